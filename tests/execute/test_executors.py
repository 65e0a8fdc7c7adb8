"""Executors: in-process, one process per trial (isolation and limits) and their search loop."""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nasforge as nf
from nasforge.errors import ConfigError, UnknownComponentError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.execute import make_executor
from nasforge.experiment import Experiment, TrialState
from nasforge.space import Architecture
from nasforge.strategy._schedulers import SuccessiveHalving
from nasforge.testing import ToyEstimator, toy_space


class Misbehaving(Estimator):
    """The toy score, except that ``a`` picks a way to go wrong: 0 raises, 1 hangs, 2 eats memory,
    3 kills its own process."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        a = arch.params["a"]
        if a == 0:
            raise RuntimeError("planted crash")
        if a == 1:
            time.sleep(120)
        if a == 2:
            hog = np.ones(600 * 2**20 // 8)  # 600 MB, touched
            time.sleep(5)
            return {"score": float(hog[0])}
        if a == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"score": float(a + int(arch.params["c"]))}


class Leaky(Estimator):
    """Keeps 20 MB per call in a module-level list: a leak that grows any process it runs in."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        _LEAK.append(np.ones(20 * 2**20 // 8))
        return {"score": float(arch.params["a"])}


_LEAK: list[np.ndarray] = []


def _run(executor: str | None, n: int = 30, seed: int = 3, **options: Any) -> Experiment:
    exp = Experiment("x", space=toy_space(), objectives=["score"], seed=seed)
    return exp.run("random", ToyEstimator(), n_trials=n, executor=executor, executor_options=options)


def _signature(exp: Experiment) -> list[tuple[int, str, Any]]:
    return [(t.number, t.architecture.key, t.metrics.get("score")) for t in exp.trials]


def test_process_executor_evaluates_what_the_in_process_run_evaluates() -> None:
    sequential = _run(None, n=12)
    parallel = _run("process", n=12, concurrency=3)
    assert [t.state for t in parallel.trials] == [TrialState.COMPLETE] * 12
    assert _signature(parallel) == _signature(sequential)


def test_concurrent_trials_never_duplicate_a_running_architecture() -> None:
    exp = Experiment("grid", space=toy_space(), objectives=["score"], seed=0)
    seen: list[int] = []

    class Spy(nf.strategy.RandomSearch):  # type: ignore[name-defined,misc]
        def ask(self) -> Architecture | None:
            seen.append(len(self.pending))
            return super().ask()

    exp.run(Spy(seed=0), ToyEstimator(), n_trials=20, executor="process", executor_options={"concurrency": 4})
    keys = [t.architecture.key for t in exp.trials]
    assert len(keys) == len(set(keys)) == 20
    assert max(seen) == 3  # asked while three others were running, and told about them


def test_failures_of_every_kind_fail_only_their_trial() -> None:
    space = nf.SearchSpace({"a": nf.IntRange(0, 4), "c": nf.Choice([False, True])})
    exp = Experiment("bad", space=space, objectives=["score"], seed=1)
    exp.run(
        "grid",
        Misbehaving(),
        executor="process",
        executor_options={"concurrency": 2, "time_limit": 6, "memory_limit_mb": 400},
    )
    by_a: dict[int, set[str]] = {}
    for t in exp.trials:
        by_a.setdefault(t.architecture.params["a"], set()).add(
            t.state.value if t.error is None else t.error.strip().splitlines()[-1]
        )
    errors = {a: " ".join(v) for a, v in by_a.items()}
    assert "planted crash" in errors[0]
    assert errors[1].startswith("timed out")
    assert errors[2].startswith("out of memory")
    assert "SIGKILL" in errors[3]
    assert errors[4] == "COMPLETE"
    assert exp.finished_count() == 10  # the search went on after every failure
    assert exp.best() is not None and exp.best().architecture.params["a"] == 4  # type: ignore[union-attr]


def test_scheduler_decides_on_reports_sent_from_child_processes() -> None:
    space = toy_space()

    def run(executor: str) -> Experiment:
        exp = Experiment("sh", space=space, objectives=["score"], seed=5)
        exp.run(
            "grid",
            ToyEstimator(report_steps=9),
            n_trials=30,
            scheduler=SuccessiveHalving(min_resource=1, eta=3),
            executor=executor,
        )
        return exp

    here, there = run("inprocess"), run("process")
    pruned = [t.number for t in here.trials if t.state is TrialState.PRUNED]
    assert pruned  # the scheduler stopped some trials
    assert [t.number for t in there.trials if t.state is TrialState.PRUNED] == pruned
    assert [dict(t.intermediate) for t in there.trials] == [dict(t.intermediate) for t in here.trials]


def test_driver_memory_stays_flat_with_one_process_per_trial() -> None:
    """50 trials that each leak 20 MB: in child processes the driver does not grow."""
    exp = Experiment("leak", space=toy_space(), objectives=["score"], seed=0, dedup=False)
    exp.run("random", Leaky(), n_trials=5, executor="process")  # warm-up: imports, first fork
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    exp.run("random", Leaky(), n_trials=55, executor="process", executor_options={"concurrency": 2})
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert exp.finished_count() == 55
    assert not _LEAK  # nothing leaked into this process
    assert after - before < 30, f"driver peak memory grew from {before:.0f} MB to {after:.0f} MB"


def test_time_limit_and_deadline_use_the_trial_report_path(tmp_path: Path) -> None:
    exp = Experiment("hard", space=toy_space(), objectives=["score"], seed=0, run_dir=tmp_path / "run")

    class Slow(ToyEstimator):
        def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
            for step in range(1, 100):
                time.sleep(0.05)
                ctx.report(step, float(step), {"epochs": step})
            return {"score": 1.0}

    start = time.monotonic()
    exp.run("random", Slow(), timeout=1.0, hard_timeout=True, executor="process")
    assert time.monotonic() - start < 4
    last = exp.trials[-1]
    assert last.state is TrialState.PRUNED
    assert last.metrics["epochs"] >= 1  # the cost it reached is kept
    stored = Experiment.open(tmp_path / "run", space=toy_space(), read_only=True).trials[-1]
    assert dict(stored.intermediate) == dict(last.intermediate)  # reports reached the database


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("threads", {}, "unknown executor 'threads'"),
        ("process", {"concurency": 2}, "no option 'concurency'"),
        ("process", {"concurrency": 0}, "concurrency must be a positive integer"),
        ("process", {"time_limit": -1}, "time_limit must be a positive"),
        ("process", {"start_method": "teleport"}, "start_method 'teleport' is not available"),
    ],
)
def test_bad_executor_settings_say_what_is_wrong(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises((ConfigError, UnknownComponentError), match=message):
        make_executor(name, **options)


def test_in_process_executor_is_the_default_and_one_at_a_time() -> None:
    ex = make_executor()
    assert ex.name == "inprocess" and ex.concurrency == 1
    assert make_executor(ex) is ex
    with pytest.raises(ConfigError, match="go with an executor name"):
        make_executor(ex, concurrency=2)


def test_memory_limit_counts_what_the_trial_adds_not_the_driver_it_shares() -> None:
    ballast = np.ones(400 * 2**20 // 8)  # the driver holds 400 MB; a forked child shares them
    exp = Experiment("shared", space=toy_space(), objectives=["score"], seed=0)
    exp.run(
        "random", ToyEstimator(), n_trials=3, executor="process", executor_options={"memory_limit_mb": 150}
    )
    assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 3
    assert ballast[0] == 1.0


def test_children_do_not_hang_on_a_thread_pool_the_driver_started() -> None:
    """GNU OpenMP in a forked child that uses a pool its parent had started can hang: trials are
    single-threaded under fork by default, so a driver that trained before still gets results."""
    import torch

    from nasforge._threads import torch_threads

    with torch_threads(2), torch.no_grad():  # the driver starts a 2-thread pool
        torch.nn.functional.conv2d(torch.randn(8, 16, 28, 28), torch.randn(16, 16, 3, 3))
    task = nf.datasets.load("digits")
    exp = Experiment("pool", space=nf.spaces.ChainCNN(depth=2), seed=0)
    exp.run(
        "random",
        nf.TrainEstimator(task, epochs=1),
        n_trials=2,
        executor="process",
        executor_options={"time_limit": 120},  # a hang fails the trial instead of the test run
    )
    assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 2, [t.error for t in exp.trials]
