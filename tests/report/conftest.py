"""Small real runs (SQLite run directories) for the report tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_runs import ChainScore, TwoGoals, chain_space, plain_space

from nasforge.experiment import Experiment


@pytest.fixture(scope="session")
def chain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 trials of random search with median stopping: completed, pruned and failed trials."""
    run = tmp_path_factory.mktemp("chain") / "run"
    exp = Experiment("chain", space=chain_space(), objectives=["val_accuracy"], run_dir=run, seed=0)
    exp.run("random", ChainScore(), n_trials=24, scheduler="median", scheduler_options={"min_trials": 8})
    return run


@pytest.fixture(scope="session")
def two_goal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("mo") / "run"
    exp = Experiment("mo", space=plain_space(), objectives=["score", "-cost"], run_dir=run, seed=1)
    exp.run("random", TwoGoals(), n_trials=20)
    return run
