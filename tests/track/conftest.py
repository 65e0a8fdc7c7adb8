"""One real toy search logged to MLflow's default store, shared by the MLflow and CLI tests.

Creating an MLflow SQLite store runs its schema migrations (~5 s), so the session makes one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import Experiment, Trial
from nasforge.testing import ToyEstimator, toy_space


@pytest.fixture(scope="session")
def mlflow_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Trial], Path]:
    """A toy search of 8 trials (a=2 fails) with the default MLflowCallback: (its trials, run dir)."""
    pytest.importorskip("mlflow", reason="MLflow tracking needs: pip install 'nasforge[mlflow]'")
    from nasforge.track import MLflowCallback

    run = tmp_path_factory.mktemp("mlflow") / "run"
    exp = Experiment("toy-mlflow", space=toy_space(), objectives=["score"], run_dir=run, seed=0)
    with MLflowCallback() as ml:
        exp.run(
            strategy="random",
            estimator=ToyEstimator(fail_when=2, report_steps=3),
            n_trials=8,
            callbacks=[ml],
        )
    assert ml.failed is None
    return exp.trials, run
