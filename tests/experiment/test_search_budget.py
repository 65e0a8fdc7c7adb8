"""run_search under a time budget (``time:``) and its expectations, with tiny real budgets on digits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nasforge.config import parse_config
from nasforge.errors import ConfigError
from nasforge.experiment._search import SearchHooks, run_search


def _config(tmp_path: Path, **settings: Any) -> Any:
    return parse_config(
        {"run_dir": str(tmp_path / "run"), "estimator": {"name": "train", "epochs": 1}, **settings}
    )


class _Plan(SearchHooks):
    """Keeps the plan lines a search says."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def on_plan(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_THREADS", "1")


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """First imports (the FLOP counter, the database) and data loading cost seconds once per
    process; a tiny search first, so the budgets below measure the search."""
    run_search(_config(tmp_path_factory.mktemp("warm"), trials=1, final={"epochs": 0}))


def test_a_time_budget_alone_leaves_the_trial_count_open_and_is_validated() -> None:
    assert parse_config({"time": "15m"}).trials is None
    assert parse_config({"time": "1h30m", "trials": 5}).model_dump()["time"] == 5400.0
    assert parse_config({}).trials == 30 and parse_config({}).time is None
    with pytest.raises(ConfigError, match=r"^config: time: time budget must be a duration such as 90s"):
        parse_config({"time": "15 minutes"})


def test_the_budget_cuts_the_running_trial_and_the_final_training_and_says_so(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = _config(
        tmp_path,
        time=6,
        estimator={"name": "train", "epochs": 500},  # one trial would take a minute or more
        final={"epochs": 2000},
    )
    start = time.monotonic()
    result = run_search(cfg, hooks=_Plan(lines))
    took = time.monotonic() - start

    trials = result.experiment.trials
    assert trials[0].state.value == "PRUNED" and trials[0].metrics["epochs"] < 500  # cut at its deadline
    assert result.experiment.best() is None and result.best is not None  # the best of the cut trials
    assert result.final is not None and result.final.metrics["epochs"] < 2000
    assert lines[0].startswith("time budget 6s: about 4.5s of search") and "25%" in lines[0]
    assert took < 6 + 3, took  # over by at most an epoch and the model's test and saving

    recorded = json.loads((result.run_dir / "final.json").read_text())["time_budget"]
    assert recorded == result.time_budget
    # the planned epochs, unless the final training ran slower than the best trial and was cut
    assert recorded["total_s"] == 6 and recorded["final_epochs"] >= result.final.metrics["epochs"]
    assert recorded["final_cut"] or recorded["final_epochs"] == result.final.metrics["epochs"]
    assert recorded["search_s"] < 0.75 * 6 + 1.5  # the first share (75% until measured) and an epoch
    assert recorded["final_cut"] == result.final.metrics["cut_by_time_limit"]
    assert "time: 6.0" in (result.run_dir / "config.yaml").read_text()


def test_with_trials_too_whichever_ends_first_and_the_plan_is_said_twice(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_search(_config(tmp_path, time="10m", trials=2, final={"epochs": 3}), hooks=_Plan(lines))
    assert result.experiment.finished_count() == 2  # the trials ended it, long before the time
    assert len(lines) == 2, lines
    assert lines[0].startswith("time budget 10m00s: about 7m30s of search, 2m30s of final training (25%")
    assert "(trials of ~" in lines[1] and "(3 epochs at ~" in lines[1]
    assert result.time_budget is not None and result.time_budget["final_epoch_seconds"] is None
    assert result.final is not None and result.final.metrics["epochs"] == 3
    assert result.final.metrics["cut_by_time_limit"] is False
    assert result.time_budget is not None and result.time_budget["plan"]["epoch_seconds"] > 0


def test_a_time_share_fills_the_final_training_with_epochs_up_to_its_cap(tmp_path: Path) -> None:
    lines: list[str] = []
    final = {"epochs": 1, "time_share": 0.5, "max_epochs": 400}
    result = run_search(_config(tmp_path, time=8, trials=2, final=final), hooks=_Plan(lines))
    assert lines[0].endswith(" 4s of final training (50%: as many epochs as fit, up to 400)")
    recorded = result.time_budget
    assert recorded is not None and recorded["plan"]["share"] == 0.5
    assert recorded["final_epoch_seconds"] > 0  # timed on the final training's own batches first
    planned = recorded["final_epochs"]
    assert 1 < planned < 400  # more than epochs: 1, fewer than the cap (digits' epoch takes ~0.1 s)
    assert any(line.startswith(f"final training: {planned} epochs (as many as fit in the ") for line in lines)
    assert result.final is not None  # the planned epochs, unless the time limit cut them
    assert recorded["final_cut"] or result.final.metrics["epochs"] == planned
    # a quick epoch count stops at the cap, and the time left is not spent
    capped = run_search(
        _config(tmp_path / "capped", time=8, trials=1, final={**final, "max_epochs": 2}), hooks=_Plan([])
    )
    assert capped.final is not None and capped.final.metrics["epochs"] == 2


def test_mnist_sized_data_fills_half_the_budget_unless_the_final_epochs_are_given() -> None:
    from nasforge.config import search_config

    timed = search_config(None, dataset="fashion-mnist", time="30m").final
    assert (timed.epochs, timed.time_share, timed.max_epochs, timed.timed_epochs()) == (8, 0.5, 60, 60)
    given = search_config(None, dataset="fashion-mnist", time="30m", final_epochs=12).final
    assert (given.time_share, given.max_epochs, given.timed_epochs()) == (None, None, 12)
    yaml_given = parse_config({"data": "fashion-mnist", "time": "30m", "final": {"epochs": 12}}).final
    assert (yaml_given.time_share, yaml_given.timed_epochs()) == (None, 12)  # as --final-epochs
    shared = parse_config({"data": "fashion-mnist", "final": {"epochs": 12, "time_share": 0.4}}).final
    assert (shared.time_share, shared.timed_epochs()) == (0.4, 60)  # a share given stays
    digits = search_config(None, time="15m").final  # digits' 60 epochs take seconds: their need
    assert digits.time_share is None and digits.timed_epochs() == 60
    assert parse_config({"final": {"epochs": 0, "time_share": 0.5}}).final.timed_epochs() == 0
    with pytest.raises(ConfigError, match=r"final\.time_share"):
        parse_config({"final": {"time_share": 1.5}})


def test_a_search_bounded_by_trials_says_how_long_it_expects_after_the_first(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_search(_config(tmp_path, trials=3, final={"epochs": 4}), hooks=_Plan(lines))
    assert result.time_budget is None and result.experiment.finished_count() == 3
    assert len(lines) == 1
    assert lines[0].startswith("expected: about ") and "for 2 more trials" in lines[0]
    assert "of final training (4 epochs at ~" in lines[0] and lines[0].endswith(" in all")


def test_the_time_left_after_a_final_training_is_planned_for_its_scoring() -> None:
    from nasforge._budget import DETECTION_EVAL_COST, EVAL_COST
    from nasforge.data import load, load_detection
    from nasforge.experiment._search_budget import _evaluation_seconds

    digits = load("digits")  # validation once, test twice (accuracy and report)
    per_image = 2.0 / len(digits.x_train)
    expected = EVAL_COST * per_image * (len(digits.x_val) + 2 * len(digits.x_test))
    assert _evaluation_seconds(digits, 2.0) == pytest.approx(expected)
    det = load_detection("shapes-det", n_train=64, n_val=16, n_test=8, seed=0)  # val and test mAP
    assert _evaluation_seconds(det, 2.0) == pytest.approx(DETECTION_EVAL_COST * 2.0 / 64 * (16 + 8))
    assert _evaluation_seconds(det, None) == 0.0  # nothing measured yet


def test_a_detection_trials_few_steps_per_epoch_are_scaled_to_a_pass_for_the_final_plan() -> None:
    from types import SimpleNamespace

    from nasforge._budget import epoch_seconds_from
    from nasforge.data import load, load_detection
    from nasforge.experiment._search_budget import _costs

    det = load_detection("shapes-det", n_train=512, n_val=8, n_test=8, seed=0)
    config = parse_config({"data": "shapes-det", "estimator": {"name": "train_det", "batch_size": 32}})
    # 4 epochs of 8 steps of 32 images: each a half pass over 512 images, the final's epoch a whole
    trial = SimpleNamespace(metrics={"train_seconds": 8.0, "epochs": 4, "steps": 32, "resolution": 64})
    (scaled,) = _costs([trial], config, det)
    assert scaled["train_seconds"] == 16.0 and trial.metrics["train_seconds"] == 8.0
    assert epoch_seconds_from([scaled], resolution=64) == 4.0
    # a trial that passed over its data (or a classifier's) is what it was
    whole = SimpleNamespace(metrics={"train_seconds": 8.0, "epochs": 1, "steps": 16, "fraction": 1.0})
    assert _costs([whole], config, det) == [whole.metrics]
    assert _costs([trial], _config(Path(".")), load("digits")) == [trial.metrics]
