"""run_search builds each component once from the config, and reports progress through hooks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nasforge.config import parse_config
from nasforge.errors import ConfigError
from nasforge.execute._process import ProcessExecutor
from nasforge.experiment._search import SearchHooks, run_search
from nasforge.strategy._evolution import RegularizedEvolution
from nasforge.strategy._schedulers import MedianStopping


def _counting(monkeypatch: pytest.MonkeyPatch, built: Counter[str], cls: type) -> None:
    original = cls.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        built[cls.__name__] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", init)


class _Seen(SearchHooks):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_start(self, experiment: Any, run_dir: Path, resumed: bool) -> None:
        self.calls.append("start")

    def on_trial(self, experiment: Any, trial: Any) -> None:
        self.calls.append("trial")

    def on_plan(self, line: str) -> None:
        self.calls.append("plan")

    def on_final_start(self, experiment: Any, epochs: int) -> None:
        self.calls.append(f"final {epochs}")

    def on_epoch(self, stage: str, epoch: int, epochs: int, record: Any) -> None:
        self.calls.append(f"{stage} {epoch}/{epochs}")


def test_strategy_scheduler_and_executor_are_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: Counter[str] = Counter()
    for cls in (RegularizedEvolution, MedianStopping, ProcessExecutor):
        _counting(monkeypatch, built, cls)
    cfg = parse_config(
        {
            "run_dir": str(tmp_path / "run"),
            "estimator": {"epochs": 1},
            "trials": 2,
            "time": "10m",  # the loop runs twice under a time budget: still one of each
            "scheduler": "median",
            "executor": {"name": "process", "concurrency": 1},
            "final": {"epochs": 1},
        }
    )
    hooks = _Seen()
    result = run_search(cfg, hooks=hooks)
    assert built == {"RegularizedEvolution": 1, "MedianStopping": 1, "ProcessExecutor": 1}
    assert result.experiment.strategy is not None and result.experiment.finished_count() == 2
    assert hooks.calls[0] == "start" and hooks.calls.count("trial") == 2
    assert hooks.calls[-2:] == ["final 1", "final 1/1"]


def test_a_strategy_that_cannot_be_built_leaves_no_run_directory(tmp_path: Path) -> None:
    cfg = parse_config({"strategy": {"name": "evolution", "population": 0}, "trials": 1})
    with pytest.raises(ConfigError, match="population must be an integer >= 2"):
        run_search(cfg, base=tmp_path)
    assert not (tmp_path / "runs").exists()
