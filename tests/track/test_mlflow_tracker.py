"""MLflow tracking: a real toy search, read back from the store with MlflowClient."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from nasforge import Experiment, Trial
from nasforge.testing import ToyEstimator, toy_space

pytest.importorskip("mlflow", reason="MLflow tracking needs: pip install 'nasforge[mlflow]'")

from mlflow.tracking import MlflowClient

from nasforge.track import MLflowCallback, TrackingWarning


def _runs(run: Path, name: str) -> tuple[MlflowClient, Any, list[Any], list[Any]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("nasforge.role") == "experiment"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, experiment, parents, children


def _running_best(trials: list[Trial]) -> dict[int, float]:
    best: dict[int, float] = {}
    so_far: float | None = None
    for t in trials:  # the in-process executor finishes trials in number order
        if t.value is not None:
            so_far = t.value if so_far is None else max(so_far, t.value)
        if so_far is not None:
            best[t.number] = so_far
    return best


def test_one_parent_run_and_a_nested_run_per_trial(mlflow_search: tuple[list[Trial], Path]) -> None:
    trials, run = mlflow_search
    first = len(trials)  # a resumed search (the next test) may add more
    assert (run / "mlflow.db").is_file()  # the default store: in the run directory, no server
    client, experiment, parents, children = _runs(run, "toy-mlflow")
    assert experiment.artifact_location == (run / "mlartifacts").resolve().as_uri()

    (parent,) = parents
    assert parent.info.run_name == "toy-mlflow"
    assert parent.data.params == {"objectives": "score", "space": "toy", "seed": "0"}
    assert parent.data.tags["nasforge.run_dir"] == str(run.resolve())
    history = {m.step: m.value for m in client.get_metric_history(parent.info.run_id, "best_score")}
    assert {s: v for s, v in history.items() if s < first} == _running_best(trials)

    by_number = {int(r.data.tags["nasforge.trial"]): r for r in children}
    assert set(range(first)) <= set(by_number)
    states = set()
    for t in trials:
        child = by_number[t.number]
        states.add(t.state.value)
        assert child.info.run_name == f"trial {t.number}"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["state"] == t.state.value
        assert child.data.tags["architecture_key"] == t.architecture.key
        assert child.data.params == {k: str(v) for k, v in t.architecture.params.items()}
        if t.state.value == "COMPLETE":
            assert child.info.status == "FINISHED"
            assert child.data.metrics["score"] == t.metrics["score"]
            curve = client.get_metric_history(child.info.run_id, "learning_curve")
            assert [(m.step, m.value) for m in curve] == sorted(t.intermediate.items())
            assert "error" not in child.data.tags
        else:
            assert child.info.status == "FAILED"
            assert child.data.tags["error"] == "planted failure for a=2"
            assert child.data.metrics == {}
    assert states == {"COMPLETE", "FAIL"}


def test_a_resumed_search_continues_the_same_parent_run(mlflow_search: tuple[list[Trial], Path]) -> None:
    trials, run = mlflow_search
    first = len(trials)
    again = Experiment("toy-mlflow", space=toy_space(), objectives=["score"], run_dir=run, seed=0)
    with MLflowCallback() as ml:
        again.run(
            strategy="random",
            estimator=ToyEstimator(fail_when=2, report_steps=3),
            n_trials=first + 2,
            callbacks=[ml],
        )
    _, _, parents, children = _runs(run, "toy-mlflow")
    (parent,) = parents
    assert parent.info.run_id == ml.parent_run_id and parent.info.status == "FINISHED"
    numbers = sorted(int(r.data.tags["nasforge.trial"]) for r in children)
    assert numbers == [t.number for t in again.trials] == list(range(first + 2))


def test_a_bad_tracking_uri_warns_once_and_the_search_goes_on() -> None:
    exp = Experiment("bad-uri", space=toy_space(), objectives=["score"], seed=0)
    ml = MLflowCallback(tracking_uri="nosuchscheme://nowhere")
    with pytest.warns(TrackingWarning) as record:
        exp.run(strategy="random", estimator=ToyEstimator(), n_trials=4, callbacks=[ml])
    ml.close()
    warned = [w for w in record if issubclass(w.category, TrackingWarning)]
    assert len(warned) == 1
    assert "mlflow tracking failed at trial 0" in str(warned[0].message)
    assert "nosuchscheme" in str(warned[0].message) and "the search goes on" in str(warned[0].message)
    assert [t.state.value for t in exp.trials] == ["COMPLETE"] * 4


def test_an_unreachable_server_fails_fast() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        exp = Experiment("no-server", space=toy_space(), objectives=["score"], seed=0)
        ml = MLflowCallback(tracking_uri=f"http://127.0.0.1:{port}")
        start = time.monotonic()
        with pytest.warns(TrackingWarning, match=f"cannot reach the MLflow server at 127.0.0.1:{port}"):
            exp.run(strategy="random", estimator=ToyEstimator(), n_trials=2, callbacks=[ml])
    assert time.monotonic() - start < 30  # not MLflow's minutes of retries
    assert len(exp.trials) == 2


def test_an_experiment_without_run_dir_needs_a_tracking_uri() -> None:
    exp = Experiment("no-dir", space=toy_space(), objectives=["score"], seed=0)
    ml = MLflowCallback()
    with pytest.warns(TrackingWarning, match="needs tracking_uri= for an experiment without a run_dir"):
        exp.run(strategy="random", estimator=ToyEstimator(), n_trials=2, callbacks=[ml])
    assert len(exp.trials) == 2
