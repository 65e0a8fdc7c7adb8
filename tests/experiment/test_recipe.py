"""The data's training recipe in a search (augmentation, label smoothing, warm-up): the rule that
gives the final training the estimator's recipe unless ``final:`` overrides it, ``auto`` per
dataset, the line a search starts with, and what the trials and final.json record; digits, tiny."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from nasforge._defaults import RECIPES
from nasforge.config import parse_config
from nasforge.data import load
from nasforge.errors import ConfigError
from nasforge.estimate import TrainEstimator
from nasforge.experiment._recipe import final_recipe, recipe_line
from nasforge.experiment._search import SearchHooks, run_search

SMALL_SPACE = {"name": "chain_cnn", "depth": [1, 2], "layer": {"filters": [8]}}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_THREADS", "1")


@pytest.fixture(scope="module")
def digits() -> Any:
    return load("digits")


def _recipe(**items: Any) -> dict[str, Any]:
    return {"augment": "none", "label_smoothing": 0.0, "warmup": 0.0, **items}


def test_the_final_training_takes_the_estimators_recipe_item_by_item_unless_final_sets_it() -> None:
    cfg = parse_config(
        {
            "estimator": {"augment": "shift", "label_smoothing": 0.05, "warmup": 1},
            "final": {"epochs": 20, "augment": "none", "warmup": 2},
        }
    )
    # augment and warmup from final:, label smoothing from the estimator
    assert final_recipe(cfg, "digits", 20) == _recipe(label_smoothing=0.05, warmup=2.0)
    # nothing set anywhere: the table's final-training values for the dataset (aliases too)
    plain = parse_config({"data": "mnist"})
    table = RECIPES["fashion-mnist"]["final"]
    assert final_recipe(plain, "fmnist", 8) == dataclasses.asdict(table)
    assert final_recipe(plain, "my_scans", 8) == _recipe()  # data of your own: nothing added
    # auto in final: is the table's even when the estimator sets an item
    cfg = parse_config({"estimator": {"augment": "shift"}, "final": {"augment": "auto"}})
    assert final_recipe(cfg, "digits", 60)["augment"] == RECIPES["digits"]["final"].augment
    # a shortened training (a race, a time budget) warms up for at most half its epochs
    cfg = parse_config({"estimator": {"epochs": 10, "warmup": 3}})
    assert (
        final_recipe(cfg, "digits", 60)["warmup"] == 3.0 and final_recipe(cfg, "digits", 2)["warmup"] == 1.0
    )


@pytest.mark.parametrize(
    ("final", "message"),
    [
        ({"augment": "rotate"}, r"final\.augment: must be one of auto, none, shift, shift\+flip"),
        ({"label_smoothing": 1}, r"final\.label_smoothing: Input should be less than 1"),
        ({"warmup": -1}, r"final\.warmup: Input should be greater than or equal to 0"),
        ({"epochs": 8, "warmup": 5}, r"final: warmup must be a number of epochs in \[0, epochs / 2\]"),
    ],
)
def test_bad_final_recipes_are_one_line_errors(final: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"final": final})


def test_detection_data_takes_no_recipe_in_final() -> None:
    from nasforge.experiment._prepare import check_task_kinds

    cfg = parse_config({"data": "shapes-det", "final": {"augment": "shift"}})
    with pytest.raises(ConfigError, match="final: augment: classification only"):
        check_task_kinds(cfg)


def test_the_recipe_line_says_what_trials_and_final_training_use_and_where_it_came_from(digits) -> None:
    cfg = parse_config({})
    line = recipe_line(cfg, digits, TrainEstimator(digits))
    assert line == (
        "recipe for digits (auto): no augmentation, no label smoothing "
        "(override: --augment, --label-smoothing, estimator:/final: in YAML)"
    )
    given = parse_config(
        {"estimator": {"augment": "shift", "label_smoothing": 0.1, "warmup": 0}, "final": {"warmup": 1}}
    )
    est = TrainEstimator(digits, augment="shift", label_smoothing=0.1, warmup=0)
    assert recipe_line(given, digits, est) == (
        "recipe for digits: shift augmentation, label smoothing 0.1, warm-up 1 epoch in the final training "
        "(override: --augment, --label-smoothing, estimator:/final: in YAML)"
    )
    apart = parse_config({"estimator": {"augment": "shift+flip"}, "final": {"augment": "shift"}})
    est = TrainEstimator(digits, augment="shift+flip")
    assert recipe_line(apart, digits, est).startswith(
        "recipe for digits (auto): shift+flip augmentation in the trials, shift augmentation in the final "
        "training, no label smoothing ("
    )
    # the table's recipe for the dataset, looked up by its name
    mnist = dataclasses.replace(digits, name="mnist")
    line = recipe_line(parse_config({"data": "mnist"}), mnist, TrainEstimator(mnist))
    assert line is not None and line.startswith("recipe for mnist (auto): ")
    augment = RECIPES["mnist"]["trial"].augment
    assert ("no augmentation" in line) if augment == "none" else (f"{augment} augmentation" in line)


class _Recipe(SearchHooks):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_recipe(self, line: str) -> None:
        self.lines.append(line)


def test_a_search_says_its_recipe_and_records_it_in_the_trials_and_final_json(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "run_dir": str(tmp_path / "run"),
            "space": SMALL_SPACE,
            "strategy": "random",
            "trials": 2,
            "estimator": {"epochs": 2, "augment": "shift", "label_smoothing": 0.05},
            "final": {"epochs": 2, "augment": "none", "warmup": 1},
        }
    )
    hooks = _Recipe()
    result = run_search(cfg, hooks=hooks)
    assert hooks.lines == [
        "recipe for digits (auto): shift augmentation in the trials, label smoothing 0.05, warm-up 1 epoch "
        "in the final training (override: --augment, --label-smoothing, estimator:/final: in YAML)"
    ]
    for trial in result.experiment.trials:  # the trials' own recipe: warmup is the table's (digits: 0)
        assert {k: trial.metrics[k] for k in ("augment", "label_smoothing", "warmup")} == _recipe(
            augment="shift", label_smoothing=0.05
        )
    final = json.loads((result.run_dir / "final.json").read_text())
    used = _recipe(label_smoothing=0.05, warmup=1.0)  # augment and warmup: final:'s; smoothing inherited
    assert {k: final["final_metrics"][k] for k in used} == used
    assert {k: final["final_training"][k] for k in used} == used
    assert result.final is not None and {k: result.final.metrics[k] for k in used} == used


def test_the_default_search_on_digits_records_the_plain_recipe(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "run_dir": str(tmp_path / "run"),
            "space": SMALL_SPACE,
            "trials": 1,
            "estimator": {"epochs": 1},
            "final": {"epochs": 1},
        }
    )
    result = run_search(cfg)
    final = json.loads((result.run_dir / "final.json").read_text())
    assert {k: final["final_training"][k] for k in ("augment", "label_smoothing", "warmup")} == _recipe()
    assert "augment: null" in (result.run_dir / "config.yaml").read_text()  # final: inherits, as written
