"""benchmarks/real_data_compare.py: the pinned old default, the report, and one tiny real run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from nasforge.config import SMALL_BUDGET, parse_config
from nasforge.registry import ESTIMATORS, STRATEGIES, check_options
from nasforge.space import space_from_config

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCH / "real_data_compare.py"


def _load() -> ModuleType:
    if str(BENCH) not in sys.path:  # the script imports _meta from its own directory
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("real_data_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


rdc = _load()


@pytest.mark.parametrize(("dataset", "epochs", "final_epochs"), [("digits", 10, 60), ("fashion-mnist", 4, 8)])
def test_the_old_default_is_a_valid_config_that_states_every_setting(
    dataset: str, epochs: int, final_epochs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = rdc.old_yaml(dataset)
    raw = yaml.safe_load(text)
    config = parse_config(raw, source="old")
    estimator = dict(config.estimator)
    check_options("estimator", "train", ESTIMATORS.get(estimator.pop("name")), {"task": None, **estimator})
    strategy = dict(config.strategy)
    check_options("strategy", "evolution", STRATEGIES.get(strategy.pop("name")), strategy)
    space_from_config(config.space)
    assert (estimator["epochs"], config.final.epochs) == (epochs, final_epochs)
    assert config.strategy == {"name": "evolution", "population": 10, "tournament": 3, "crossover": 0.0}
    assert config.space["max_params"] == 150_000 and config.space["depth"] == [2, 5]
    assert (estimator["optimizer"], estimator["schedule"], estimator["weight_decay"]) == (
        "adam",
        "cosine",
        5e-4,
    )
    assert config.final.race == 1 and config.executor == {"name": "inprocess"}
    # the recipe options that came later are off where the config takes them, and said otherwise
    _, dropped = rdc.old_config(dataset)
    for section, options in (("estimator", estimator), ("final", config.final.model_dump())):
        for key, off in rdc._OPTIONAL_OFF.items():
            assert options[key] == off if key in options else f"{section}.{key}" in dropped
    assert all(key in text for key in dropped)

    # it does not follow the defaults when they change
    monkeypatch.setitem(SMALL_BUDGET["final"], "epochs", 99)
    monkeypatch.setitem(SMALL_BUDGET["final"], "lr", 0.5)
    again = parse_config(yaml.safe_load(rdc.old_yaml("digits")))
    assert (again.final.epochs, again.final.lr) == (60, 0.01)


def test_the_hand_designed_networks_are_chain_cnns_of_the_stated_size() -> None:
    big = rdc.hand_architecture((1, 28, 28), 10)
    small = rdc.hand_architecture((1, 8, 8), 10)
    assert big.space.name == "chain_cnn"
    assert big.space.describe(big) == (
        "conv3x32-relu > conv3x32-relu > maxpool3/2 > conv3x64-relu > conv3x64-relu > maxpool3/2"
    )
    assert big.space.count_params(big) == 65_834  # as the script's docstring says
    assert small.space.count_params(small) == 28_842


def _row(arm: str, seed: int, acc: float, *, trial: int | None = 3, status: str = "ok") -> dict[str, Any]:
    row: dict[str, Any] = {
        "arm": arm,
        "seed": seed,
        "dataset": "digits",
        "time": "20s",
        "time_budget_s": 20.0,
    }
    if status != "ok":
        return {**row, "status": status, "error": "ConfigError: no such file"}
    return {
        **row,
        "status": "ok",
        "wall_seconds": 21.0 + seed,
        "test_accuracy": acc,
        "test_balanced_accuracy": acc - 0.001,
        "test_f1_macro": acc - 0.002,
        "test_auc": 0.99,
        "params": 50_000,
        "flops": 2_000_000,
        "pick_trial": trial,
        "pick_is_trial0": None if trial is None else trial == 0,
        "trials_completed": None if trial is None else 6,
        "architecture": "conv3x32-relu > maxpool3/2",
        "final_epochs": 60,
        "cpus": [0],
        "commit": "5eb29a3" + "0" * 33,
        "meta": {"date": f"2026-12-03T21:0{seed}:00+00:00", "machine": "Linux", "cpus": "2"},
    }


def test_the_report_pairs_seeds_and_applies_the_criterion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [_row("hand", 4, 0.5)]  # an earlier row of the same run: the last one counts
    rows += [_row("default", s, 0.95 + 0.001 * s, trial=0 if s == 0 else 3) for s in range(5)]
    rows += [_row("hand", s, 0.93 + 0.002 * s, trial=None) for s in range(5)]
    rows += [_row("optuna", s, 0.95 + 0.001 * s - (0.01 if s < 3 else -0.01)) for s in range(5)]
    rows += [_row("random", 0, 0.0, status="failed"), _row("random", 1, 0.94)]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"arm": "cut sh')  # a killed write
    rdc.main(["report", "--in", str(path)])
    text = capsys.readouterr().out
    assert "### digits, 20s per run" in text
    assert "| hand | 5 | 0.9340 ± 0.0014 |" in text
    assert "| default | 5 | 0.9520 ± 0.0007 |" in text and "| 1 of 5 |" in text
    assert "| random | 1 (1 failed) |" in text
    assert "| hand | 5 | +0.0180 ± 0.0007 | 5 / 0 / 0 | 0.031 |" in text
    assert "| optuna | 5 | +0.0020 ± 0.0049 | 3 / 0 / 2 | 0.500 |" in text
    assert (
        "`default` vs `hand`: mean difference +0.0180 (s.e. 0.0007), better on 5 of 5 seeds: **beats**"
        in text
    )
    assert (
        "`default` vs `optuna`: mean difference +0.0020 (s.e. 0.0049), better on 3 of 5 seeds: **not shown**"
        in text
    )
    assert "pick is trial 0 in 1 of 5 seeds (20%): **met**" in text
    assert "- random seed 0: ConfigError: no such file" in text
    assert (
        "- default, seed 0: trial 0 (6 trials completed), `conv3x32-relu > maxpool3/2`, 60 final epochs"
        in text
    )

    rdc.main(["criterion", "--beat", "hand", "--min-wins", "5", "--target-accuracy", "0.935"])
    said = capsys.readouterr().out
    assert "`default` beats `hand` when" in said and "at least 5 of the 5 seeds" in said
    assert "fashion-mnist at 30m per run" in said and "at least 0.935" in said


def test_the_sign_test_and_the_budget_labels() -> None:
    assert rdc.sign_test(5, 0) == pytest.approx(1 / 32)
    assert rdc.sign_test(4, 1) == pytest.approx(6 / 32)
    assert rdc.sign_test(0, 0) == 1.0
    assert [rdc.budget_label(s) for s in (900, 1800, 20, 90)] == ["15m", "30m", "20s", "90s"]
    assert rdc.parse_cpus("0-2,5") == [0, 1, 2, 5]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What the script prints; a run's children are pinned to core 0 at the lowest priority."""
    extra = ["--seeds", "0", "--cpus", "0", "--nice", "19"] if args[0] == "run" else []
    rdc.main([*args, *extra])
    return capsys.readouterr().out


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_tiny_run_writes_rows_resumes_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "real.jsonl"
    said = _run(capsys, "run", "--dataset", "digits", "--time", "10s", "--arms", "hand", "--out", str(out))
    [hand] = _rows(out)
    assert hand["status"] == "ok", (hand, said)
    assert 0 <= hand["test_accuracy"] <= 1 and 0 <= hand["test_auc"] <= 1
    assert hand["cpus"] == [0] and hand["commit"] and hand["meta"]["command"]
    assert hand["architecture"] == "conv3x32-relu > conv3x32-relu > maxpool3/2 > conv3x64-relu"
    assert hand["params"] == 28_842 and hand["flops"] > 0 and hand["pick_trial"] is None
    final = json.loads((tmp_path / "real" / "digits_10s_hand_s0" / "final.json").read_text())
    assert final["time_budget"]["final_epochs"] == hand["final_epochs"] >= 1
    assert final["final_training"]["lr"] == SMALL_BUDGET["final"]["lr"]  # the search's final recipe
    assert "# commit 5eb29a3" in (tmp_path / "real" / "old_digits.yaml").read_text()

    again = _run(capsys, "run", "--dataset", "digits", "--time", "10s", "--arms", "hand", "--out", str(out))
    assert "hand seed 0: in" in again and len(_rows(out)) == 1

    # a child that fails is a failed row with its error, and the run goes on
    missing = str(tmp_path / "none")
    args = ["--time", "10s", "--arms", "random", "--out", str(out)]
    _run(capsys, "run", "--dataset", "mnist", "--data-dir", missing, *args)
    failed = _rows(out)[-1]
    assert (failed["arm"], failed["status"]) == ("random", "failed")
    assert f"{missing} does not exist" in failed["error"], failed

    shown = _run(capsys, "report", "--in", str(out))
    assert "### digits, 10s per run" in shown and "### mnist, 10s per run" in shown
    assert "| hand | 1 | " in shown and "| random | 0 (1 failed) |" in shown


@pytest.mark.slow
def test_the_search_arms_record_their_trials_and_pick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "real.jsonl"
    said = _run(
        capsys, "run", "--dataset", "digits", "--time", "20s", "--arms", "old", "default", "--out", str(out)
    )
    rows = _rows(out)
    assert [(r["arm"], r["status"]) for r in rows] == [("old", "ok"), ("default", "ok")], (rows, said)
    for r in rows:
        assert 0 <= r["test_accuracy"] <= 1 and r["params"] > 0 and r["flops"] > 0
        assert r["trials_completed"] + r["trials_pruned"] >= 1  # under load the budget may cut them all
        assert r["pick_is_trial0"] == (r["pick_trial"] == 0)
    assert "old_digits.yaml" in rows[0]["child_command"] and "# commit 5eb29a3" in rows[0]["config"]
    assert " search --dataset digits --time 20s --seed 0 --run-dir " in rows[1]["child_command"]
