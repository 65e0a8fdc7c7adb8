"""The Ray executor on a local cluster: concurrent trials, same architectures, failures isolated."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nasforge[ray]')")

from nasforge.estimate._base import Estimator, TrialContext  # noqa: E402
from nasforge.execute._ray import RayExecutor  # noqa: E402
from nasforge.experiment import Experiment, TrialState  # noqa: E402
from nasforge.space import Architecture, Choice, IntRange, SearchSpace  # noqa: E402
from nasforge.strategy._schedulers import SuccessiveHalving  # noqa: E402
from nasforge.testing import ToyEstimator, toy_space  # noqa: E402


class Timed(Estimator):
    """The toy score after a short sleep, recording when each trial ran (to see the overlap)."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        begin = time.time()
        if arch.params["a"] == 0 and arch.params["b"] == "x":
            raise RuntimeError("planted crash on a worker")
        time.sleep(0.4)
        score = arch.params["a"] + 2 * (arch.params["b"] == "z") + int(arch.params["c"])
        return {"score": float(score), "begin": begin, "end": time.time()}


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local Ray cluster for the module (starting one takes seconds): 4 logical CPUs on 2 cores."""
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_four_concurrent_trials_evaluate_what_the_sequential_run_evaluates(cluster: None) -> None:
    def run(executor: Any) -> Experiment:
        exp = Experiment("ray", space=toy_space(), objectives=["score"], seed=7)
        return exp.run("random", Timed(), n_trials=16, executor=executor)

    sequential = run(None)
    on_ray = run(RayExecutor(concurrency=4))
    assert [(t.number, t.architecture.key, t.state) for t in on_ray.trials] == [
        (t.number, t.architecture.key, t.state) for t in sequential.trials
    ]
    assert [t.metrics.get("score") for t in on_ray.trials] == [
        t.metrics.get("score") for t in sequential.trials
    ]
    failed = [t for t in on_ray.trials if t.state is TrialState.FAIL]
    assert all("planted crash on a worker" in (t.error or "") for t in failed)
    # trials really overlapped: at some moment more than one was running
    spans = [(t.metrics["begin"], t.metrics["end"]) for t in on_ray.trials if "begin" in t.metrics]
    overlap = max(sum(1 for b, e in spans if b <= start < e) for start, _ in spans)
    assert overlap >= 2


def test_reports_reach_the_driver_scheduler(cluster: None) -> None:
    def run(executor: Any) -> Experiment:
        exp = Experiment("sh", space=toy_space(), objectives=["score"], seed=5)
        sh = SuccessiveHalving(min_resource=1, eta=3)
        return exp.run("grid", ToyEstimator(report_steps=9), n_trials=20, scheduler=sh, executor=executor)

    here = run(None)
    there = run(RayExecutor(concurrency=1))  # one at a time: the same rung decisions in the same order
    assert [t.state for t in there.trials] == [t.state for t in here.trials]
    assert any(t.state is TrialState.PRUNED for t in there.trials)


def test_time_limit_cancels_a_hanging_trial(cluster: None) -> None:
    class Hang(Estimator):
        def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
            if arch.params["a"] == 1:
                time.sleep(300)
            return {"score": float(arch.params["a"])}

    exp = Experiment("hang", space=toy_space(), objectives=["score"], seed=0)
    start = time.monotonic()
    exp.run("grid", Hang(), n_trials=12, executor=RayExecutor(concurrency=2, time_limit=2))
    assert time.monotonic() - start < 60
    hung = [t for t in exp.trials if t.architecture.params["a"] == 1]
    assert hung and all(t.state is TrialState.FAIL and "timed out" in (t.error or "") for t in hung)
    assert exp.finished_count() == 12


def test_a_ray_worker_that_dies_fails_only_its_trial(cluster: None) -> None:
    class Dies(Estimator):
        def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
            if arch.params["a"] == 2:
                os._exit(1)  # the worker process is gone, as after an out-of-memory kill
            return {"score": float(arch.params["a"])}

    space = SearchSpace({"a": IntRange(0, 4), "c": Choice([False, True])})
    exp = Experiment("dies", space=space, objectives=["score"], seed=0)
    exp.run("grid", Dies(), executor=RayExecutor(concurrency=2))
    dead = [t for t in exp.trials if t.architecture.params["a"] == 2]
    assert len(dead) == 2 and all(t.state is TrialState.FAIL and "crashed" in (t.error or "") for t in dead)
    assert exp.finished_count() == 10  # the search went on
    assert sum(t.state is TrialState.COMPLETE for t in exp.trials) == 8


def test_gpus_per_trial_on_a_cluster_without_gpus_stops_before_any_trial(cluster: None) -> None:
    from nasforge.errors import ConfigError

    with pytest.raises(ConfigError, match="--gpus-per-trial 1 but the Ray cluster has no GPU"):
        RayExecutor(gpus_per_trial=1).start()
    assert ray.is_initialized()  # the module's cluster, which the executor did not start, is left alone


class SeenGpus(Estimator):
    """Reports the CUDA_VISIBLE_DEVICES its Ray task ran with."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        return {"score": 1.0, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")}


def test_a_trial_without_reserved_gpus_sees_none(cluster: None) -> None:
    exp = Experiment("no-gpu", space=toy_space(), objectives=["score"], seed=0)
    exp.run("random", SeenGpus(), n_trials=2, executor=RayExecutor(concurrency=2))
    assert [t.metrics["gpus"] for t in exp.trials] == ["", ""]  # device auto trains on the CPU
