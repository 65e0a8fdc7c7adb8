"""The command line: a real tiny search, `show`, and every bad-input path (one line, exit code 2)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.config import search_config

runner = CliRunner()
TINY = ["--trials", "2", "--epochs", "1", "--final-epochs", "1"]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NASFORGE_DATA_DIR", raising=False)
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tiny_search_writes_the_run_directory_and_show_reads_it(in_tmp: Path) -> None:
    result = runner.invoke(app, ["search", *TINY, "--seed", "3"])
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "digits-evolution"
    for name in (
        "nasforge.db",
        "config.yaml",
        "leaderboard.csv",
        "best_architecture.json",
        "final.json",
        "model.nasforge",
    ):
        assert (run / name).is_file(), name
    final = json.loads((run / "final.json").read_text())
    assert 0 <= final["final_metrics"]["test_accuracy"] <= 1
    report = final["test_report"]  # beyond accuracy: what a user of an imbalanced set needs
    assert report["accuracy"] == pytest.approx(final["final_metrics"]["test_accuracy"])
    assert sum(map(sum, report["confusion_matrix"])) == report["samples"] > 0
    assert len(report["per_class"]) == 10 and sum(report["train_class_counts"]) > 0
    assert final["final_metrics"]["test_balanced_accuracy"] == report["balanced_accuracy"]
    assert "test accuracy" in result.output and "test: balanced accuracy" in result.output
    assert "weakest class: " in result.output  # ten classes: the per-class table is in final.json

    shown = runner.invoke(app, ["show", str(run)])
    assert shown.exit_code == 0 and "best: trial" in shown.output
    assert "test: balanced accuracy" in shown.output
    as_json = runner.invoke(app, ["show", str(run), "--json"])
    assert json.loads(as_json.output)["trials"][0]["state"] == "COMPLETE"

    # the same command again starts a new run next to the first; --resume continues the newest
    again = runner.invoke(app, ["search", *TINY, "--seed", "3"])
    assert again.exit_code == 0 and (in_tmp / "runs" / "digits-evolution-2" / "final.json").is_file()
    resumed = runner.invoke(app, ["search", *TINY, "--seed", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    flat = "".join(resumed.output.split())  # rich wraps long paths
    assert "resuming" in flat and "digits-evolution-2" in flat
    other_seed = runner.invoke(app, ["search", *TINY, "--seed", "4", "--resume"])
    assert other_seed.exit_code == 2 and "seed 3" in other_seed.output


def test_yaml_config(in_tmp: Path) -> None:
    cfg = _write(
        in_tmp / "s.yaml",
        "name: mine\nspace: {name: chain_cnn, depth: [1, 2], layer: {filters: [8]}}\n"
        "strategy: {name: random}\nestimator: {name: train, epochs: 2}\ntrials: 3\nfinal: {epochs: 0}\n"
        "scheduler: {name: successive_halving, eta: 2}\n",
    )
    result = runner.invoke(app, ["search", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    assert (in_tmp / "runs" / "mine" / "best_architecture.json").is_file()
    saved = (in_tmp / "runs" / "mine" / "config.yaml").read_text()
    assert "successive_halving" in saved and "eta: 2" in saved
    assert not (in_tmp / "runs" / "mine" / "final.json").exists()


BAD_INPUT = [
    (["search", "--strategy", "evolutoin"], "unknown strategy 'evolutoin'. Did you mean 'evolution'?"),
    (["search", "--dataset", "fashoin-mnist"], "Did you mean 'fashion-mnist'?"),
    (["search", "missing.yaml"], "missing.yaml does not exist"),
    (["search", "--dataset", "mnist", "--data-dir", "no/such/dir"], "no/such/dir"),
    (["search", "{bad_yaml}"], "not valid YAML"),
    (["search", "{unknown_option}"], "strategy 'evolution' has no option 'populaton'"),
    (["search", "{unknown_key}"], "trails: unknown key"),
    (["search", "{bad_value}"], "trials: Input should be greater than or equal to 1"),
    (["search", "{impossible_space}"], "no valid architecture"),
    (["search", "{bad_space}"], "kernel"),
    (["search", "{not_a_mapping}"], "must hold a mapping"),
    (["search", "--resume", "--name", "never-ran"], "nothing to resume"),
    (["show", "."], "not a nasforge run directory"),
    (["search", "--scheduler", "hyperbnad"], "unknown scheduler 'hyperbnad'. Did you mean 'hyperband'?"),
    (["search", "{bad_scheduler}"], "eta (the reduction factor) must be an integer >= 2"),
    (["search", "--time", "15x"], "--time: time budget must be a duration such as 90s, 15m, 1h30m or 2h"),
    (["search", "--time=0"], "--time: time budget must be more than 0 seconds, got '0'"),
    (["search", "{bad_time}"], "time: time budget must be a duration such as 90s, 15m, 1h30m or 2h"),
    (["search", "--class-names", "a,b"], "class names: got 2 (a, b) for the 10 classes of digits"),
    (["search", "--class-names", " , "], "--class-names: no names in ' , '"),
    (["search", "--fraction", "0.5", "{zero_cost}"], "estimator 'zero_cost' has no option 'fraction'"),
    (["search", "--augment", "rotate"], "--augment must be one of auto, none, shift, shift+flip"),
    (["search", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1), e.g. 0.1, got 1.0"),
    (["search", "--label-smoothing", "-0.1"], "--label-smoothing must be in [0, 1)"),
    (["search", "--dataset", "shapes-det", "--augment", "shift"], "--augment: classification only"),
    (["search", "{bad_final_augment}"], "final.augment: must be one of auto, none, shift, shift+flip"),
    (["search", "{long_warmup}"], "final: warmup must be a number of epochs in [0, epochs / 2]"),
    (["search", "{estimator_augment}"], "augment must be one of none, shift, shift+flip or auto"),
]

FILES = {
    "bad_yaml": "space: {name: chain_cnn, depth: [2, 4\n",
    "unknown_option": "strategy: {name: evolution, populaton: 4}\n",
    "unknown_key": "trails: 4\n",
    "bad_value": "trials: 0\n",
    "impossible_space": "space: {name: chain_cnn, max_params: 10}\n",
    "bad_space": "space: {name: chain_cnn, layer: {kernel: [2, 4]}}\n",
    "not_a_mapping": "- just\n- a list\n",
    "bad_scheduler": "scheduler: {name: successive_halving, eta: 1}\n",
    "bad_time": "time: 15 minutes\n",
    "zero_cost": "estimator: zero_cost\n",
    "bad_final_augment": "final: {augment: flip}\n",
    "long_warmup": "final: {epochs: 4, warmup: 3}\n",
    "estimator_augment": "estimator: {augment: rotate}\n",
}


def test_augment_and_label_smoothing_reach_the_trials_and_the_final_training(in_tmp: Path) -> None:
    args = ["search", *TINY, "--augment", "shift", "--label-smoothing", "0.05", "--run-dir", "r"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "recipe for digits: shift augmentation, label smoothing 0.05 (override: --augment" in text
    cfg = yaml.safe_load((in_tmp / "r" / "config.yaml").read_text())
    assert cfg["estimator"]["augment"] == cfg["final"]["augment"] == "shift"
    assert cfg["estimator"]["label_smoothing"] == cfg["final"]["label_smoothing"] == 0.05
    final = json.loads((in_tmp / "r" / "final.json").read_text())
    assert (final["final_metrics"]["augment"], final["final_metrics"]["label_smoothing"]) == ("shift", 0.05)
    leaderboard = (in_tmp / "r" / "leaderboard.csv").read_text()
    assert "augment" in leaderboard.splitlines()[0] and ",shift," in leaderboard
    # the command line wins over a config's final: recipe; another estimator trains no recipe
    cfg_file = _write(in_tmp / "c.yaml", "estimator: zero_cost\nfinal: {augment: none}\n")
    merged = search_config(cfg_file, augment="shift+flip")
    assert merged.final.augment == "shift+flip" and "augment" not in merged.estimator
    assert search_config(None, augment="auto").estimator["augment"] == "auto"


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_code_2(in_tmp: Path, args: list[str], message: str) -> None:
    args = [str(_write(in_tmp / f"{a[1:-1]}.yaml", FILES[a[1:-1]])) if a.startswith("{") else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert message in text, text
    assert "Traceback" not in result.output


def test_console_script_prints_no_traceback(in_tmp: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "search", "--strategy", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown strategy 'nope'")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_list_and_version() -> None:
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and "evolution" in listed.output and "chain_cnn" in listed.output
    assert "executor: inprocess (in_process, local), process (subprocess), ray" in listed.output
    assert "tracker: mlflow, tensorboard (tb)" in listed.output
    text = " ".join(listed.output.split())
    from nasforge.registry import STRATEGIES

    for alias in ("rs", "re", "ls", "gls", "hb"):  # what `nasforge bench --strategies` accepts
        assert f"{STRATEGIES.canonical_name(alias)} (" in text and alias in STRATEGIES.aliases(alias)
    assert "random (rs)" in text and "evolution (re, rea)" in text and "local (ls)" in text
    assert runner.invoke(app, ["--version"]).output.strip()


def test_a_search_on_a_shared_database_is_shown_from_its_run_directory(in_tmp: Path) -> None:
    url = f"sqlite:///{in_tmp / 'shared.db'}"
    args = ["search", *TINY, "--final-epochs", "0", "--storage", url, "--run-dir", "worker1", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    assert not (in_tmp / "worker1" / "nasforge.db").exists()  # the trials are in the shared database
    shown = runner.invoke(app, ["show", "worker1", "--json"])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)["trials"]) == 2
    second = runner.invoke(app, [*args[:-3], "--trials", "3", "--run-dir", "worker2", "-q"])
    assert second.exit_code == 0, second.output  # a second worker joins and adds the third trial
    assert len(json.loads(runner.invoke(app, ["show", "worker1", "--json"]).output)["trials"]) == 3


def test_executor_options_merge_into_the_config() -> None:
    from nasforge.cli import _executor_options

    data: dict[str, object] = {}
    _executor_options(data, None, 2, 600.0, None, None)
    assert data["executor"] == {"name": "process", "concurrency": 2, "time_limit": 600.0}
    data = {}
    _executor_options(data, None, None, None, None, None, 0.5, 1.0)
    assert data["executor"] == {"name": "ray", "cpus_per_trial": 0.5, "gpus_per_trial": 1.0}
    data = {"executor": {"name": "ray", "address": "auto"}}
    _executor_options(data, None, 4, None, None, None)
    assert data["executor"] == {"name": "ray", "address": "auto", "concurrency": 4}
    data = {"executor": {"name": "ray", "address": "auto"}}
    _executor_options(data, "process", None, None, 2000.0, None)  # another executor: its own options
    assert data["executor"] == {"name": "process", "memory_limit_mb": 2000.0}
    data = {}
    _executor_options(data, None, None, None, None, None)
    assert "executor" not in data


PROGRESS = re.compile(r"^(trials|final training epochs) \d+/\d+, ")


def test_progress_in_a_log_is_a_few_plain_lines_with_an_eta(in_tmp: Path) -> None:
    """Output captured (not a terminal, as in a log file or CI): lines, not bars, and not one per event."""
    started = time.monotonic()
    args = ["search", "--trials", "6", "--epochs", "1", "--final-epochs", "8", "--seed", "0"]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert not re.search(r"[━╸╺] *\d+/\d+", result.output)  # no progress bar drawn into the log
    lines = [line for line in result.output.splitlines() if PROGRESS.match(line)]
    trials = [line for line in lines if line.startswith("trials")]
    assert trials[0].startswith("trials 1/6, ") and " per trial, " in trials[0] and ", ETA " in trials[0]
    assert trials[-1].startswith("trials 6/6, ") and ", done in " in trials[-1]
    assert "best val_accuracy" in trials[-1]
    final = [line for line in lines if line.startswith("final training")]
    assert final[0].startswith("final training epochs 1/8, ") and ", ETA " in final[0]
    assert final[-1].startswith("final training epochs 8/8, ") and "train loss" in final[-1]
    # the first and last trial and epoch, and at most one more line per 15 seconds: not 6 + 8 lines
    assert len(lines) <= 4 + elapsed / 15, lines

    quiet = runner.invoke(app, ["search", "--trials", "1", "--epochs", "1", "--final-epochs", "1", "-q"])
    assert quiet.exit_code == 0 and not any(PROGRESS.match(line) for line in quiet.output.splitlines())


def _described(run: Path) -> list[str]:
    from nasforge.experiment import Experiment

    exp = Experiment.open(run, read_only=True)
    return [exp.space.describe(t.architecture) for t in exp.leaderboard(10)]


def test_leaderboard_is_readable_at_80_columns(in_tmp: Path) -> None:
    """search and show print the leaderboard at 80 columns without breaking a layer name in two."""
    args = ["search", "--trials", "4", "--epochs", "1", "--final-epochs", "0", "--seed", "5"]
    searched = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert searched.exit_code == 0, searched.output
    shown = runner.invoke(app, ["show", "runs/digits-evolution"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    for output in (searched.output, shown.output):
        lines = output.splitlines()
        assert max(len(line) for line in lines) <= 80
        for desc in _described(in_tmp / "runs" / "digits-evolution"):
            assert all(any(w in line for line in lines) for w in desc.split()), (desc, output)


def test_an_nb201_leaderboard_wraps_between_nodes_at_80_columns() -> None:
    from io import StringIO

    from rich.console import Console

    from nasforge.cli import _fitted_table

    nb201 = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
    chain = "sepconv3x64/2-hardswish+skip > conv3x16/2-hardswish+skip > maxpool3"
    columns = [("rank", 1), ("trial", 0), ("val_accuracy", 0), ("params", 0), ("train_seconds", 2),
               ("architecture", 0)]  # fmt: skip
    rows = [["1", "12", "0.9312", "1,234,567", "123.4", nb201], ["2", "3", "0.9", "1,546", "0.5", chain]]
    console = Console(file=StringIO(), width=80)
    console.print(_fitted_table("top", columns, rows, 80))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert max(len(line) for line in lines) <= 80
    nodes = nb201.replace("|+|", "|+ |").split()  # |avg_pool_3x3~0|+, |nor_conv_3x3~0|nor_conv_1x1~1|+, ...
    for part in [*nodes, *chain.split()]:
        assert any(part in line for line in lines), part
    assert "not shown at this width: train seconds" in "\n".join(lines)
    assert "123.4" not in "\n".join(lines) and "1,234,567" in "\n".join(lines)


@pytest.mark.parametrize("where", ["below_a_file", "read_only"])
def test_an_unwritable_run_directory_is_one_line_before_any_work(in_tmp: Path, where: str) -> None:
    (in_tmp / "notes.txt").write_text("x")
    run_dir, why = {
        "below_a_file": (in_tmp / "notes.txt" / "run", "notes.txt is a file, not a directory"),
        "read_only": (Path("/proc/nasforge-run"), "/proc does not accept new files"),  # even for root
    }[where]
    # mnist has no files here: reaching the data would be another error, so the check comes first
    result = runner.invoke(app, ["search", "--dataset", "mnist", "--run-dir", str(run_dir), *TINY])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: cannot write the run directory") and why in text, text
    assert "choose another --run-dir" in text and "Traceback" not in result.output
    assert sorted(p.name for p in in_tmp.iterdir()) == ["notes.txt"]


def test_show_json_honours_top_and_failures(tmp_path: Path) -> None:
    from nasforge.errors import TrialFailed
    from nasforge.estimate import Estimator, TrialContext
    from nasforge.experiment import Experiment
    from nasforge.space import Architecture, IntRange, SearchSpace

    class EvenOnly(Estimator):
        def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, float]:
            if arch.params["a"] % 2:
                raise TrialFailed(f"odd a={arch.params['a']}")
            return {"score": float(arch.params["a"])}

    run = tmp_path / "run"
    exp = Experiment(
        "even", space=SearchSpace({"a": IntRange(0, 30)}), objectives=["score"], run_dir=run, seed=0
    )
    exp.run("random", EvenOnly(), n_trials=16)
    failed = sorted(t.number for t in exp.trials if t.state.value == "FAIL")
    completed = [t for t in exp.trials if t.state.value == "COMPLETE"]
    assert failed and len(completed) > 3

    plain = json.loads(runner.invoke(app, ["show", str(run), "--json"]).output)
    assert len(plain["trials"]) == min(10, len(completed)) and "failures" not in plain
    top3 = json.loads(runner.invoke(app, ["show", str(run), "--json", "--top", "3"]).output)
    assert [r["score"] for r in top3["trials"]] == sorted(
        (t.metrics["score"] for t in completed), reverse=True
    )[:3]
    both = json.loads(runner.invoke(app, ["show", str(run), "--json", "--top", "2", "--failures"]).output)
    assert len(both["trials"]) == 2 and [r["number"] for r in both["failures"]] == failed
    assert all(r["state"] == "FAIL" and r["error"].startswith("odd a=") for r in both["failures"])
    help_text = " ".join(runner.invoke(app, ["show", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "with --failures, failures" in help_text


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--from", "digits-s", "--dataset", "mnist", "--out", "{tmp}/m.nasforge"],
        ["export", "digits-s", "--format", "int8", "--dataset", "mnist", "--out", "{tmp}/m.onnx"],
        ["profile", "digits-s", "--int8", "--dataset", "mnist", "--repeats", "2", "--warmup", "0"],
    ],
    ids=lambda args: args[0],
)
def test_missing_data_advises_a_download_option_the_command_has(in_tmp: Path, args: list[str]) -> None:
    (in_tmp / "empty").mkdir()
    args = [a.replace("{tmp}", str(in_tmp)) for a in args]
    result = runner.invoke(app, [*args, "--data-dir", str(in_tmp / "empty")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "--download" in result.output  # the advice ...
    assert (
        "--download" in runner.invoke(app, [args[0], "--help"], env={"COLUMNS": "200"}).output
    )  # ... is true


def test_the_budget_knobs_reach_the_trials_and_the_final_training(in_tmp: Path) -> None:
    result = runner.invoke(app, ["search", *TINY, "--fraction", "0.5", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "digits-evolution"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["estimator"]["fraction"], config["estimator"]["batch_size"]) == (0.5, 16)
    assert (config["final"]["epochs"], config["final"]["batch_size"]) == (1, 16)
    rows = json.loads(runner.invoke(app, ["show", str(run), "--json"]).output)["trials"]
    assert {row["fraction"] for row in rows} == {0.5}  # the trials trained on half the images
    text = " ".join(result.output.split())
    assert re.search(r"expected: about \S+ for 1 more trials \(~\S+ each\), then \S+ of final training", text)

    # a config's final: batch_size is set apart, and stays; the trials take the option's
    cfg = _write(in_tmp / "apart.yaml", "final: {epochs: 1, batch_size: 64}\n")
    apart = runner.invoke(app, ["search", str(cfg), *TINY, "--batch-size", "16", "--run-dir", "apart"])
    assert apart.exit_code == 0, apart.output
    config = yaml.safe_load((in_tmp / "apart" / "config.yaml").read_text())
    assert (config["estimator"]["batch_size"], config["final"]["batch_size"]) == (16, 64)


def test_a_time_budget_is_planned_up_front_and_accounted_for(in_tmp: Path) -> None:
    args = ["search", "--time", "5m", "--trials", "2", "--epochs", "1", "--final-epochs", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "time budget 5m00s: about 3m45s of search, 1m15s of final training (25%: until the first" in text
    assert re.search(r"time budget 5m00s: about \S+ of search \(trials of ~\S+ each", text)
    assert re.search(r"time budget 5m00s: spent \S+ \(\S+ search, 2 trials; ", text)
    final = json.loads((in_tmp / "runs" / "digits-evolution" / "final.json").read_text())
    assert final["time_budget"]["total_s"] == 300 and final["time_budget"]["final_cut"] is False
    assert "time: 300.0" in (in_tmp / "runs" / "digits-evolution" / "config.yaml").read_text()
    helped = " ".join(re.sub(r"[│╭╮╰╯─]", " ", runner.invoke(app, ["search", "--help"]).output).split())
    assert "training comes after and is not counted: --time covers both)" in helped, helped
    assert "90s, 15m, 1h30m, 2h or seconds" in helped


def test_class_names_name_unnamed_data_and_show_in_predictions(in_tmp: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * 255 / 16).astype("uint8")
    np.savez(in_tmp / "d.npz", x_train=pixels, y_train=digits.target)  # no class_names in the file
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    (in_tmp / "names.txt").write_text("\n".join(names) + "\n")
    args = ["search", *TINY, "--dataset", "npz", "--data-dir", "d.npz", "--run-dir", "r"]
    result = runner.invoke(app, [*args, "--class-names", "names.txt"])
    assert result.exit_code == 0, result.output
    assert json.loads((in_tmp / "r" / "final.json").read_text())["task"]["class_names"] == names
    Image.fromarray(pixels[7]).save(in_tmp / "seven.png")
    predicted = runner.invoke(app, ["predict", "r/model.nasforge", "seven.png", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output)["predictions"][0]["top1"] in names

    trained = runner.invoke(app, ["train", "r", "--epochs", "1", "--out", "t.nasforge"])  # the run's names
    assert trained.exit_code == 0, trained.output
    renamed = runner.invoke(
        app, ["train", "r", "--epochs", "1", "--out", "u.nasforge", "--class-names", "a,b"]
    )
    assert renamed.exit_code == 2 and "got 2 (a, b) for the 10 classes" in " ".join(renamed.output.split())
    from nasforge.deploy import load

    assert load(in_tmp / "t.nasforge").class_names == tuple(names)


def test_metric_selects_by_balanced_accuracy_and_bad_values_are_one_line(in_tmp: Path) -> None:
    result = runner.invoke(app, ["search", *TINY, "--metric", "balanced_accuracy", "--run-dir", "m"])
    assert result.exit_code == 0, result.output
    run = in_tmp / "m"
    config = (run / "config.yaml").read_text()
    assert "- val_balanced_accuracy" in config
    shown = json.loads(runner.invoke(app, ["show", str(run), "--json"]).output)
    for row in shown["trials"]:
        assert 0 <= row["val_balanced_accuracy"] <= 1 and 0 <= row["val_auc"] <= 1
    for args, fragment in (
        (["--metric", "precision"], "--metric must be one of accuracy, balanced_accuracy, auc, f1_macro"),
        (
            ["--metric", "auc", str(_write(in_tmp / "zc.yaml", "estimator: zero_cost\n"))],
            "needs the train estimator",
        ),
    ):
        bad = runner.invoke(app, ["search", *TINY, *args])
        assert bad.exit_code == 2 and fragment in bad.output and "Traceback" not in bad.output


def test_option_help_lists_the_registered_names() -> None:
    from nasforge.registry import ESTIMATORS, EXECUTORS, SCHEDULERS, STRATEGIES

    def helped(*args: str) -> str:
        shown = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).output
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown).split())

    search_help = helped("search")
    for registry in (STRATEGIES, SCHEDULERS, EXECUTORS):
        assert all(name in search_help for name in registry.names()), registry.kind
    assert all(name in helped("rank") for name in ESTIMATORS.names())
