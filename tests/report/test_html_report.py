"""The HTML report of real run directories: sections, leaderboard, embedded plots, failures, CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from html import escape
from pathlib import Path

import pytest
from report_runs import MARKUP_ERROR, ChainScore, TwoGoals, chain_space, plain_space
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import ConfigError
from nasforge.experiment import Experiment, TrialState
from nasforge.report import write_report
from nasforge.report._format import error_line, failure_reason

PNG = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def section(html: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}">(.*?)</section>', html, re.S)
    assert match, f"no section {ident}"
    return match.group(1)


def table_rows(html: str, ident: str) -> list[str]:
    match = re.search(rf'<table class="data" id="{ident}">(.*?)</table>', html, re.S)
    assert match, f"no table {ident}"
    return re.findall(r'<tr class="row">(.*?)</tr>', match.group(1), re.S)


def embedded_pngs(html: str) -> list[bytes]:
    found = re.findall(r'<img class="plot" src="data:image/png;base64,([^"]+)"', html)
    return [base64.b64decode(m) for m in found]


@pytest.fixture(scope="module")
def chain_report(chain_run: Path) -> str:
    return write_report(chain_run).read_text()


def test_a_run_directory_gets_a_self_contained_page(chain_run: Path, chain_report: str) -> None:
    html = chain_report
    for ident in ("summary", "leaderboard", "trajectory", "importance", "architectures", "failures"):
        section(html, ident)
    assert '<section id="pareto">' not in html  # one objective
    # the page needs nothing but itself: every src / href is a data URI or an anchor
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # trajectory, importance, three architecture diagrams: embedded, real PNGs, also on disk
    pngs = embedded_pngs(html)
    assert len(pngs) == 5 and all(p.startswith(PNG) and len(p) > 5000 for p in pngs)
    out = chain_run / "report"
    on_disk = {p.name for p in out.glob("*.png")}
    assert on_disk == {"trajectory.png", "importance.png", "arch_1.png", "arch_2.png", "arch_3.png"}
    assert {p.read_bytes() for p in out.glob("*.png")} == set(pngs)


def test_summary_and_leaderboard_agree_with_the_run(chain_run: Path, chain_report: str) -> None:
    exp = Experiment.open(chain_run, read_only=True)
    counts = Counter(t.state.value for t in exp.trials)
    summary = section(chain_report, "summary")
    for state in ("COMPLETE", "PRUNED", "FAIL"):
        assert f"{counts[state]} {state.lower()}" in summary
    assert "RandomSearch" in summary and "maximise val_accuracy" in summary and "chain_cnn" in summary
    assert f"<td>{exp.seed}</td>" in summary and "optuna-dashboard" in summary
    best = exp.best()
    assert best is not None and f"#{best.number} by val_accuracy" in summary
    rows = table_rows(chain_report, "leaderboard-table")
    ranked = exp.leaderboard(10)
    assert len(rows) == 10 == len(ranked)
    for row, trial in zip(rows, ranked, strict=True):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        assert int(cells[1]) == trial.number and float(cells[2]) == pytest.approx(trial.values[0], abs=1e-4)
        assert escape(exp.space.describe(trial.architecture)) in row  # type: ignore[attr-defined]
    # the top three architectures, best first
    arch = section(chain_report, "architectures")
    assert [int(n) for n in re.findall(r"<h3>#\d: trial (\d+)", arch)] == [t.number for t in ranked[:3]]


def test_failures_are_counted_by_reason_and_shown_as_text(chain_run: Path, chain_report: str) -> None:
    exp = Experiment.open(chain_run, read_only=True)
    failed = [t for t in exp.trials if t.state is TrialState.FAIL]
    pruned = [t for t in exp.trials if t.state is TrialState.PRUNED]
    assert failed and pruned
    part = section(chain_report, "failures")
    assert f"{len(pruned)} trials were pruned" in part
    reasons = {
        re.sub(r"<.*?>", "", cells[0]): int(cells[1])
        for cells in (re.findall(r"<td>(.*?)</td>", r) for r in table_rows(chain_report, "reasons"))
    }
    expected = Counter(failure_reason(t) for t in failed)
    assert reasons == dict(expected) and sum(reasons.values()) == len(failed)
    assert reasons["RuntimeError"] >= 1 and reasons["pooling first on a shallow network"] >= 1
    assert len(table_rows(chain_report, "failed-table")) == len(failed)
    # the error's markup is text: escaped, never live
    assert "shape &lt;b&gt;mismatch&lt;/b&gt; &amp; &quot;quotes&quot; &lt;script&gt;" in part
    assert MARKUP_ERROR not in chain_report and chain_report.count("<script>") == 1


def test_error_lines_and_reasons() -> None:
    tb = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad kernel 7\n'
    assert error_line(tb) == "ValueError: bad kernel 7"
    assert error_line("infeasible before training: violates params <= 1000\nmore") == (
        "infeasible before training: violates params <= 1000"
    )
    assert error_line(None) == "no reason recorded"


def test_two_objectives_get_a_pareto_front(two_goal_run: Path) -> None:
    html = write_report(two_goal_run).read_text()
    exp = Experiment.open(two_goal_run, read_only=True)
    front = exp.pareto_front()
    rows = table_rows(html, "pareto-table")
    assert [int(re.findall(r"<td>(\d+)</td>", r)[0]) for r in rows] == [t.number for t in front]
    data = json.loads((two_goal_run / "report" / "pareto.json").read_text())
    assert data["front"] == [{"trial": t.number, "values": list(t.values or ())} for t in front]
    assert "minimise cost" in section(html, "summary")
    # a space with no diagram: the top architectures are parameter tables; 'a' decides the score
    arch = section(html, "architectures")
    assert "<th>a</th>" in arch and "arch_1.png" not in html
    assert not (two_goal_run / "report" / "arch_1.png").exists()
    # trajectory, Pareto front, importance
    assert len(embedded_pngs(html)) == 3


def test_importance_finds_the_parameter_that_matters(two_goal_run: Path) -> None:
    from nasforge.report._importance import param_importance

    exp = Experiment.open(two_goal_run, read_only=True)
    result = param_importance(exp.trials, exp.space, exp.objective)
    assert result.note is None and result.trials == 20
    assert result.scores[0][0] == "a" and result.scores[0][1] > 0.6
    assert sum(s for _, s in result.scores) == pytest.approx(1.0)


def test_a_running_search_is_reported_without_disturbing_it(tmp_path: Path) -> None:
    run = tmp_path / "live"
    exp = Experiment("live", space=chain_space(), objectives=["val_accuracy"], run_dir=run, seed=3)
    exp.run("random", ChainScore(), n_trials=3)
    running = exp.ask()
    assert running is not None
    html = write_report(run).read_text()
    assert "1 trial was running when this report was written" in html
    assert "1 running" in section(html, "summary")
    assert "parameter importance needs at least 8" in section(html, "importance")
    done = sum(1 for t in exp.trials if t.values is not None)
    assert len(table_rows(html, "leaderboard-table")) == done
    # the report only read: the trial is still running, and the search goes on
    assert Experiment.open(run, read_only=True).trials[running.number].state is TrialState.RUNNING
    assert exp.tell(running, {"val_accuracy": 0.5}).state is TrialState.COMPLETE


def test_an_experiment_object_and_an_out_dir(tmp_path: Path) -> None:
    exp = Experiment("mem", space=plain_space(), objectives=["score", "-cost"], seed=0)
    with pytest.raises(ConfigError, match="no run directory; pass out_dir"):
        write_report(exp)
    exp.run("random", TwoGoals(), n_trials=10)
    path = write_report(exp, tmp_path / "r", top=4)
    assert path == tmp_path / "r" / "index.html"
    html = path.read_text()
    assert len(table_rows(html, "leaderboard-table")) == 4 and "run directory" not in html
    with pytest.raises(ConfigError, match="top must be a positive integer"):
        write_report(exp, tmp_path / "r", top=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        write_report(exp, tmp_path / "file")


def test_a_new_report_removes_plots_it_no_longer_draws(tmp_path: Path, two_goal_run: Path) -> None:
    out = tmp_path / "shared"
    write_report(two_goal_run, out)
    assert (out / "pareto.png").exists()
    exp = Experiment("few", space=chain_space(), objectives=["val_accuracy"], seed=0)
    exp.run("random", ChainScore(), n_trials=2)
    write_report(exp, out)
    assert not (out / "pareto.png").exists() and not (out / "importance.png").exists()


def test_optuna_reads_the_run_and_the_report_changes_nothing(chain_run: Path) -> None:
    import optuna

    db = chain_run / "nasforge.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    write_report(chain_run)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # what optuna-dashboard reads: the study, its trials' params, states and values
    study = optuna.load_study(study_name="chain", storage=f"sqlite:///{db}")
    exp = Experiment.open(chain_run, read_only=True)
    assert len(study.trials) == len(exp.trials) == 24
    for ft, t in zip(study.trials, exp.trials, strict=True):
        assert ft.number == t.number and ft.state.name == t.state.value
        assert ft.params == dict(t.architecture.params)
        assert (ft.values is None) == (t.values is None)
        if t.values is not None:
            assert tuple(ft.values) == t.values


# ---------------------------------------------------------------------- command line
def test_cli_writes_the_report_and_prints_its_path(chain_run: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(chain_run)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(chain_run / "report" / "index.html")
    out = tmp_path / "elsewhere"
    result = runner.invoke(app, ["report", str(chain_run), "--out", str(out), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert len(table_rows((out / "index.html").read_text(), "leaderboard-table")) == 2


@pytest.mark.parametrize(
    "case", ["missing", "empty_dir", "out_is_a_file", "out_below_a_file", "out_read_only", "top_zero"]
)
def test_cli_bad_input_is_one_line_and_exit_code_2(case: str, chain_run: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    args = {
        "missing": ["report", str(tmp_path / "nope")],
        "empty_dir": ["report", str(tmp_path / "empty")],
        "out_is_a_file": ["report", str(chain_run), "--out", str(tmp_path / "a_file")],
        "out_below_a_file": ["report", str(chain_run), "--out", str(tmp_path / "a_file" / "report")],
        "out_read_only": ["report", str(chain_run), "--out", "/proc/report"],  # refused even for root
        "top_zero": ["report", str(chain_run), "--top", "0"],
    }[case]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    if case != "top_zero":  # typer's own usage error has its box
        assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_trials_screened_out_by_a_constraint_are_counted_apart(tmp_path: Path) -> None:
    from report_runs import ChainScore, chain_space

    from nasforge.cli import app

    run = tmp_path / "run"
    exp = Experiment(
        "screened", space=chain_space(), objectives=["val_accuracy"], constraints=["params <= 1000"],
        run_dir=run, seed=0,
    )  # fmt: skip
    exp.run("random", ChainScore(), n_trials=8)
    screened = sum(t.screened for t in exp.trials)
    assert screened and exp.finished_count() == 8 == len(exp.trials) - screened
    counts = Counter("SCREENED" if t.screened else t.state.value for t in exp.trials)
    expected = ", ".join(
        f"{counts[s]} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL", "SCREENED") if counts[s]
    )
    assert expected in section(write_report(run).read_text(), "summary")
    shown = runner.invoke(app, ["show", str(run)])
    # the long temporary path makes the header wrap; compare words, not line breaks
    assert shown.exit_code == 0 and f"{screened} screened" in " ".join(shown.output.split())


def test_the_final_models_test_metrics_and_confusion_matrix(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--trials", "2", "--epochs", "1", "--final-epochs", "1", "--run-dir", str(run)]
    searched = runner.invoke(app, ["search", *args])
    assert searched.exit_code == 0, searched.output
    report = json.loads((run / "final.json").read_text())["test_report"]
    final = section(write_report(run).read_text(), "final")
    assert f"{report['balanced_accuracy']:.4f}" in final and "test AUC" in final
    assert final.count("<tr><td>") == 10  # a row per digit class in the per-class table
    assert (run / "report" / "confusion.png").is_file() and "test confusion matrix" in final

    # a run written before the test report existed still gets its accuracy, and no stale plot
    data = json.loads((run / "final.json").read_text())
    del data["test_report"]
    (run / "final.json").write_text(json.dumps(data))
    final = section(write_report(run).read_text(), "final")
    assert "predates per-class test metrics" in final and not (run / "report" / "confusion.png").exists()


def test_the_final_race_gets_a_section_with_its_candidates_folds_and_winner(tmp_path: Path) -> None:
    import yaml

    layer = {"op": ["avgpool", "conv"], "kernel": [3], "stride": [1], "filters": [16], "act": ["relu"]}
    space = {"name": "chain_cnn", "depth": 1, "layer": {**layer, "skip": [False]}}  # two networks
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({"space": space, "strategy": "grid"}))
    run = tmp_path / "run"
    args = ["--trials", "2", "--epochs", "1", "--final-epochs", "2", "--run-dir", str(run)]
    race = ["--race", "2", "--race-epochs", "1", "--race-folds", "2"]  # digits' 360 val images: k-fold
    searched = runner.invoke(app, ["search", str(tmp_path / "two.yaml"), *args, *race])
    assert searched.exit_code == 0, searched.output
    recorded = json.loads((run / "final.json").read_text())["race"]
    assert recorded["how"] == "cross-validation" and recorded["folds"] == 2 and recorded["epochs"] == 1

    html = write_report(run).read_text()
    assert html.index('<section id="race">') < html.index('<section id="final">')
    shown = section(html, "race")
    assert "by 2-fold cross-validation on train + val" in shown and "1 epoch " in shown
    rows = table_rows(shown, "race-table")
    assert len(rows) == 2
    winner = next(e for e in recorded["candidates"] if e["winner"])
    loser = next(e for e in recorded["candidates"] if not e["winner"])
    assert f"Winner: trial {winner['trial']} (search rank {winner['rank']})" in shown
    for e, row in ((winner, rows[winner["rank"] - 1]), (loser, rows[loser["rank"] - 1])):
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        assert cells[0] == ("★ winner" if e["winner"] else "") and cells[2] == str(e["trial"])
        assert f"{e['race']['val_accuracy']:.4f}" in row and f"{e['race']['val_auc']:.4f}" in row
        folds = " / ".join(f"{f['val_accuracy']:.4f}" for f in e["folds"])  # each fold's score
        assert folds in row and len(e["folds"]) == 2

    # a holdout race whose winner's training is the final model, cut by the time budget, with a note
    data = json.loads((run / "final.json").read_text())
    data["race"].update(how="holdout", folds=None, final_is_race_model=True, note="only 2 raced")
    for e in data["race"]["candidates"]:
        e.pop("folds")
        e["cut"] = True
    (run / "final.json").write_text(json.dumps(data))
    shown = section(write_report(run).read_text(), "race")
    assert "scored by <b>val_accuracy</b> on the validation split" in shown and "per fold" not in shown
    assert "its race training is the final model" in shown and "only 2 raced" in shown
    assert shown.count("cut by the time budget") == 2

    del data["race"]  # no race, no section
    (run / "final.json").write_text(json.dumps(data))
    assert '<section id="race">' not in write_report(run).read_text()
