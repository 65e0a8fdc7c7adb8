"""The final race (``final: {race: K}``, ``--race K``) and small validation sets, on digits with
tiny budgets: what it picks, what final.json keeps, k-fold scoring, the time budget, errors."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from nasforge._budget import split_time
from nasforge.cli import app
from nasforge.config import parse_config, search_config
from nasforge.data import load
from nasforge.errors import ConfigError
from nasforge.experiment._race import check_validation, fold_tasks, race_cost, race_metric, run_race
from nasforge.experiment._search import SearchHooks, run_search
from nasforge.trial import Trial

# Two architectures: global average pooling of the raw image (a 20-parameter network that cannot
# tell digits apart) and one 3x3 convolution. Ranked by -params the search puts the weak one first.
TWO = {
    "name": "chain_cnn",
    "depth": 1,
    "layer": {
        "op": ["avgpool", "conv"],
        "kernel": [3],
        "stride": [1],
        "filters": [16],
        "act": ["relu"],
        "skip": [False],
    },
}
# digits with 1,007 validation images (about 100 a class): not small, so the race uses the split
LARGE_VAL = {"name": "digits", "options": {"val_fraction": 0.56, "test_fraction": 0.1}}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_THREADS", "1")


class _Said(SearchHooks):
    """Keeps what a search says: notes, plans, the race's start, and whether a final training ran."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.plans: list[str] = []
        self.races: list[tuple[list[int], int, str]] = []
        self.final_starts: list[int] = []

    def on_note(self, line: str) -> None:
        self.notes.append(line)

    def on_plan(self, line: str) -> None:
        self.plans.append(line)

    def on_race_start(self, candidates: Sequence[Trial], epochs: int, how: str) -> None:
        self.races.append(([t.number for t in candidates], epochs, how))

    def on_final_start(self, experiment: Any, epochs: int) -> None:
        self.final_starts.append(epochs)


def _config(tmp_path: Path, **settings: Any) -> Any:
    base: dict[str, Any] = {
        "run_dir": str(tmp_path / "run"),
        "space": TWO,
        "strategy": "grid",
        "trials": 2,
        "objectives": ["-params"],
        "estimator": {"name": "train", "epochs": 1},
    }
    return parse_config({**base, **settings})


def _final(result: Any) -> dict[str, Any]:
    return json.loads((result.run_dir / "final.json").read_text())


def _op(trial: Trial) -> str:
    return str(trial.architecture.params["layer0.op"])


def test_the_race_sends_the_better_network_on_when_the_search_ranked_a_weak_one_first(
    tmp_path: Path,
) -> None:
    said = _Said()
    cfg = _config(tmp_path, data=LARGE_VAL, final={"epochs": 3, "race": 5, "race_epochs": 2})
    result = run_search(cfg, hooks=said)

    exp = result.experiment
    assert _op(exp.best()) == "avgpool"  # without a race this network would be trained
    race = result.race
    assert race is not None and race.how == "holdout" and race.folds is None
    assert race.metric == "val_accuracy"  # -params is no validation metric: accuracy picks
    assert _op(race.winner) == "conv" and result.best is race.winner
    assert said.notes == ["final race of 5: only 2 distinct completed trials, racing them all"]
    assert said.races == [([exp.best().number, race.winner.number], 2, "holdout")]
    assert said.final_starts == [3]  # race_epochs < final epochs: the winner trains again, fully

    final = _final(result)
    assert final["trial"] == race.winner.number
    assert final["architecture"] == race.winner.architecture.to_dict()
    assert final["validation"]["small"] is False and final["validation"]["images"] >= 1000
    recorded = final["race"]
    assert recorded["winner"] == race.winner.number and recorded["final_is_race_model"] is False
    assert recorded["note"] == said.notes[0]
    entries = recorded["candidates"]
    assert [e["rank"] for e in entries] == [1, 2] and [e["winner"] for e in entries] == [False, True]
    weak, strong = entries
    assert weak["trial"] == exp.best().number and weak["architecture"]["layer0.op"] == "avgpool"
    assert strong["race"]["val_accuracy"] > weak["race"]["val_accuracy"]
    for e in entries:  # every selection metric, the search's value, the time, no folds
        assert set(e["race"]) == {"val_accuracy", "val_balanced_accuracy", "val_f1_macro", "val_auc"}
        assert e["epochs"] == 2 and e["cut"] is False and e["seconds"] > 0 and "folds" not in e
        assert e["search"]["params"] == exp.trials[e["trial"]].metrics["params"]
    assert final["final_metrics"]["epochs"] == 3
    assert "test_accuracy" not in json.dumps(entries)  # only the final model is tested


def test_with_race_epochs_equal_to_the_final_epochs_the_winners_race_training_is_the_final_model(
    tmp_path: Path,
) -> None:
    said = _Said()
    cfg = _config(tmp_path, data=LARGE_VAL, final={"epochs": 2, "race": 2, "race_epochs": 2})
    result = run_search(cfg, hooks=said)

    assert said.final_starts == []  # not trained a second time
    final = _final(result)
    assert final["race"]["final_is_race_model"] is True
    winner = next(e for e in final["race"]["candidates"] if e["winner"])
    assert final["trial"] == winner["trial"] and final["final_metrics"]["epochs"] == 2
    assert final["final_metrics"]["val_accuracy"] == pytest.approx(winner["race"]["val_accuracy"])
    assert 0 < final["final_metrics"]["test_accuracy"] <= 1  # and it was tested


def test_a_race_picks_by_the_runs_metric_when_it_is_a_validation_metric() -> None:
    assert race_metric(["val_balanced_accuracy"]) == "val_balanced_accuracy"
    assert race_metric(["-val_auc"]) == "val_auc"
    assert race_metric(["-params", "val_f1_macro"]) == "val_accuracy"
    assert race_metric(["val_map"]) == "val_accuracy"


def test_a_small_validation_set_is_detected_by_images_and_by_its_smallest_class() -> None:
    task = load("digits")
    check = check_validation(task)
    assert (check.images, check.small) == (360, True)
    assert check.smallest_class == int(torch.bincount(task.y_val, minlength=10).min())
    large = load("digits", val_fraction=0.56, test_fraction=0.1)
    assert check_validation(large).images >= 1000 and not check_validation(large).small
    # shrink it below 1,000 images (Task.with_val_fraction): small again
    assert check_validation(large.with_val_fraction(0.5, seed=0)).small
    # enough images, but one class nearly absent: small by the per-class rule
    keep = torch.cat(
        [torch.nonzero(large.y_val != 3).flatten(), torch.nonzero(large.y_val == 3).flatten()[:10]]
    )
    lopsided = check_validation(_with_val(large, keep))
    assert lopsided.images >= 900 and lopsided.smallest_class == 10 and lopsided.small
    line = check.line(race=1, folds=3)
    assert line.startswith("small validation set: 360 images") and "--race" in line
    assert "3-fold cross-validation" in check.line(race=3, folds=3)


def _with_val(task: Any, index: torch.Tensor) -> Any:
    import dataclasses

    return dataclasses.replace(task, x_val=task.x_val[index], y_val=task.y_val[index])


def test_folds_are_stratified_disjoint_and_cover_train_and_val_without_test() -> None:
    task = load("digits")
    folds = fold_tasks(task, 3, seed=0)
    pool = len(task.y_train) + len(task.y_val)
    assert len(folds) == 3
    held = [f.x_val for f in folds]
    assert sum(len(h) for h in held) == pool
    assert all(len(f.y_train) + len(f.y_val) == pool and len(f.y_test) == 0 for f in folds)
    together = torch.cat(held).flatten(1)
    assert (
        torch.unique(together, dim=0).shape[0]
        == torch.unique(torch.cat([task.x_train, task.x_val]).flatten(1), dim=0).shape[0]
    )  # every image once (up to identical digits)
    for f in folds:  # each class in every fold in proportion
        share = torch.bincount(f.y_val, minlength=10).numpy() / np.bincount(
            torch.cat([task.y_train, task.y_val]).numpy(), minlength=10
        )
        assert np.all(np.abs(share - 1 / 3) < 0.02)


def test_a_small_validation_set_makes_the_race_cross_validate_and_the_final_model_train_on_train(
    tmp_path: Path,
) -> None:
    said = _Said()
    cfg = _config(tmp_path, final={"epochs": 2, "race": 2, "race_epochs": 1, "race_folds": 2})
    result = run_search(cfg, hooks=said)

    assert len(said.notes) == 1 and said.notes[0].startswith("small validation set: 360 images")
    assert "2-fold cross-validation" in said.notes[0]
    assert said.races[0][2] == "2-fold cross-validation"
    final = _final(result)
    assert final["validation"]["small"] is True and final["validation"]["note"] == said.notes[0]
    race = final["race"]
    assert race["how"] == "cross-validation" and race["folds"] == 2
    assert race["final_is_race_model"] is False  # folds of train+val: never the final model
    for e in race["candidates"]:
        assert len(e["folds"]) == 2
        mean = sum(f["val_accuracy"] for f in e["folds"]) / 2
        assert e["race"]["val_accuracy"] == pytest.approx(mean, abs=1e-6)
    best = max(race["candidates"], key=lambda e: e["race"]["val_accuracy"])
    assert best["winner"] and final["trial"] == best["trial"]
    # the final model trained on the original training split for its epochs, scored on the 360 / 360
    assert said.final_starts == [2] and final["final_metrics"]["epochs"] == 2
    assert final["test_report"]["samples"] == 360
    correct = final["final_metrics"]["val_accuracy"] * 360  # scored on the 360 validation images
    assert math.isclose(correct, round(correct), abs_tol=1e-6)


def test_without_a_race_a_small_validation_set_is_only_said(tmp_path: Path) -> None:
    said = _Said()
    result = run_search(_config(tmp_path, final={"epochs": 1}), hooks=said)
    assert len(said.notes) == 1 and "--race 3" in said.notes[0]
    assert result.race is None and said.races == []
    final = _final(result)
    assert "race" not in final and final["validation"]["small"] is True
    assert final["trial"] == result.experiment.best().number  # today's pick


def test_a_race_with_one_completed_trial_is_no_race_and_says_so(tmp_path: Path) -> None:
    said = _Said()
    result = run_search(_config(tmp_path, trials=1, final={"epochs": 1, "race": 2}), hooks=said)
    assert (
        said.notes[-1] == "final race of 2: only 1 distinct completed trial, no race: the best trains alone"
    )
    assert result.race is None and said.races == [] and said.final_starts == [1]
    assert "race" not in _final(result) and _final(result)["trial"] == 0


def test_the_time_budget_plans_the_race_and_gives_it_its_share(tmp_path: Path) -> None:
    assert (
        race_cost(parse_config({"final": {"race": 3}}).final, load("digits"), 3, cross_validate=False) == 45
    )
    reuse = parse_config({"final": {"race": 3, "race_epochs": 60}}).final
    assert race_cost(reuse, load("digits"), 3, cross_validate=False) == 120  # the winner's is the final
    task = load("digits")
    cv = race_cost(parse_config({"final": {"race": 2}}).final, task, 2, cross_validate=True)
    assert cv == pytest.approx(2 * 15 * 2 * (1077 + 360) / 1077)
    plan = split_time(900, final_epochs=60, epoch_seconds=2.0, race_epochs=45)
    assert plan.final == pytest.approx(1.2 * 105 * 2) and plan.race == pytest.approx(plan.final * 45 / 105)
    assert plan.final_epochs == 60 and "final race and training" in plan.describe()
    assert split_time(900, final_epochs=60, race_epochs=45).final == pytest.approx(900 * 0.25 * 105 / 60)

    said = _Said()
    cfg = _config(
        tmp_path,
        data=LARGE_VAL,
        time=8,
        estimator={"name": "train", "epochs": 1},
        final={"epochs": 3000, "race": 2, "race_epochs": 1000},  # far more than 8 seconds hold
    )
    start = time.monotonic()
    result = run_search(cfg, hooks=said)
    took = time.monotonic() - start

    assert "final race and training" in said.plans[0]
    spent = _final(result)["time_budget"]
    assert spent == result.time_budget
    assert 1 <= spent["race_epochs"] < 1000 and spent["race_s"] > 0 and spent["race_time_limit_s"] > 0
    race = _final(result)["race"]
    assert race["epochs"] == spent["race_epochs"] and race["time_limit_s"] == spent["race_time_limit_s"]
    assert all(e["epochs"] <= spent["race_epochs"] for e in race["candidates"])
    assert result.final is not None and result.final.metrics["epochs"] < 3000
    assert took < 8 + 4, took  # over by at most an epoch or two and the files


def test_a_candidate_cut_by_its_time_limit_is_marked(tmp_path: Path) -> None:
    result = run_search(_config(tmp_path, data=LARGE_VAL, final={"epochs": 0}))
    trials = result.experiment.leaderboard()
    race = run_race(
        trials,
        load("digits", val_fraction=0.56, test_fraction=0.1),
        metric="val_accuracy",
        epochs=500,
        recipe={"batch_size": 32, "lr": 0.01},
        seed=0,
        time_limit=0.05,
    )
    for e in race.to_dict()["candidates"]:
        assert e["cut"] is True and 1 <= e["epochs"] < 500
    assert race.time_limit == 0.05 and race.run is None


@pytest.mark.parametrize(
    ("final", "message"),
    [
        ({"race": 0}, r"^config: final\.race: must be a whole number >= 1"),
        ({"race_folds": 1}, r"^config: final\.race_folds: must be a whole number >= 2"),
        ({"race": 2, "race_epochs": 0}, r"final\.race_epochs: must be a whole number >= 1"),
        ({"epochs": 4, "race": 2, "race_epochs": 5}, r"race_epochs \(5\) must not exceed .* \(4\)"),
    ],
)
def test_bad_race_settings_are_one_clear_line(final: Mapping[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_config({"final": final})
    assert "\n" not in str(info.value)


def test_a_race_on_detection_data_is_refused_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match=r"shapes-det is a detection dataset: the final race"):
        search_config(None, dataset="shapes-det", race=2)


runner = CliRunner()


def test_the_cli_races_with_race_and_from_yaml_and_show_prints_the_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tiny = ["--strategy", "grid", "--trials", "2", "--epochs", "1", "--final-epochs", "2"]
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({"space": TWO, "final": {"race_epochs": 1}}))
    result = runner.invoke(app, ["search", "two.yaml", *tiny, "--race", "2", "--run-dir", "cli"])
    assert result.exit_code == 0, result.output
    assert "small validation set: 360 images" in result.output
    assert "Final race: top 2 trials, 1 epoch each, scored by 3-fold cross-validation" in result.output
    assert "the race winner" in result.output
    final = json.loads((tmp_path / "cli" / "final.json").read_text())
    assert final["race"]["folds"] == 3 and final["final_training"]["race"] == 2
    assert yaml.safe_load((tmp_path / "cli" / "config.yaml").read_text())["final"]["race"] == 2
    shown = runner.invoke(app, ["show", "cli"])
    assert shown.exit_code == 0 and "Final race: top 2 trials" in shown.output

    from_yaml = tmp_path / "race.yaml"
    from_yaml.write_text(yaml.safe_dump({"space": TWO, "final": {"race": 2, "race_epochs": 1, "epochs": 1}}))
    assert search_config(from_yaml).final.race == 2
    assert search_config(from_yaml, race=1).final.race == 1  # the option wins


def test_the_cli_refuses_a_bad_race_in_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["search", "--race", "0", "--trials", "1"])
    assert result.exit_code == 2
    assert "final.race: must be a whole number >= 1" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
    helped = " ".join(runner.invoke(app, ["search", "--help"]).output.split())
    assert "--race" in helped


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--race-epochs", "0"], "final.race_epochs: must be a whole number >= 1"),
        (["--race-folds", "1"], "final.race_folds: must be a whole number >= 2"),
        (["--race-epochs", "5", "--final-epochs", "4"], r"race_epochs (5) must not exceed"),
        (["--race-folds", "two"], "Invalid value for '--race-folds'"),  # typer's own check
    ],
)
def test_bad_race_epochs_and_folds_on_the_command_line_are_one_line(
    options: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["search", "--race", "2", *options, "--trials", "1"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()
    if not message.startswith("Invalid value"):  # the config's check: one line
        assert len(result.output.strip().splitlines()) == 1


def test_race_epochs_and_folds_options_go_to_final_and_win_over_yaml(tmp_path: Path) -> None:
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump({"final": {"epochs": 8, "race": 2, "race_epochs": 4, "race_folds": 4}}))
    assert (search_config(path).final.race_epochs, search_config(path).final.race_folds) == (4, 4)
    cfg = search_config(path, race_epochs=1, race_folds=2)
    assert (cfg.final.race, cfg.final.race_epochs, cfg.final.race_folds) == (2, 1, 2)
    assert search_config(None, race=3, race_epochs=2).final.race_length() == 2
    helped = " ".join(runner.invoke(app, ["search", "--help"]).output.split())
    assert "--race-epochs" in helped and "--race-folds" in helped
