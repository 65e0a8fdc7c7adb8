"""Limits the experiment enforces itself: constraints on cheap metrics before training, a hard time budget."""

from __future__ import annotations

from typing import Any

import nasforge as nf
from nasforge.experiment import Experiment, TrialState
from nasforge.hardware import count_flops, count_params


class Counting(nf.Estimator):
    """Records which architectures it was asked to evaluate; reports their real params and FLOPs."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.seen: list[str] = []

    def evaluate(self, arch: Any, ctx: Any) -> dict[str, Any]:
        self.seen.append(arch.key)
        model = arch.build()
        return {
            "val_accuracy": 0.5,
            "params": count_params(model),
            "flops": count_flops(model, self.task.input_shape),
        }


def _run(constraints: list[str], n: int = 30) -> tuple[Experiment, Counting]:
    task = nf.datasets.load("digits")
    exp = Experiment(
        "cheap",
        space=nf.spaces.ChainCNN(depth=(2, 4)),
        objectives=["val_accuracy"],
        constraints=constraints,
        seed=0,
    )
    est = Counting(task)
    exp.run("random", est, n_trials=n)
    return exp, est


def test_infeasible_architectures_are_never_trained():
    exp, est = _run(["params <= 5000", "flops <= 200000"])
    failed = [t for t in exp.trials if t.state is TrialState.FAIL]
    done = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    assert failed and done  # the sample has both kinds
    assert all(t.metrics["params"] <= 5000 and t.metrics["flops"] <= 200000 for t in done)
    assert all(t.feasible for t in done)
    for t in failed:
        assert t.architecture.key not in est.seen
        assert "infeasible before training" in (t.error or "") and "not trained" in (t.error or "")
        assert t.metrics["params"] > 5000 or t.metrics["flops"] > 200000
    assert len(est.seen) == len(done)


def test_other_constraints_are_checked_after_evaluation():
    exp, est = _run(["val_accuracy >= 0.9"], n=5)
    assert len(est.seen) == 5
    assert all(t.state is TrialState.COMPLETE and not t.feasible for t in exp.trials)


class Slow(nf.Estimator):
    """Ten 'epochs' of 30 ms each, reported as it goes."""

    def evaluate(self, arch: Any, ctx: Any) -> dict[str, Any]:
        import time

        for step in range(1, 11):
            time.sleep(0.03)
            ctx.report(step, step / 10, {"epochs": step})
        return {"score": 1.0, "epochs": 10}


def test_a_hard_timeout_stops_the_running_trial():
    from nasforge.testing import toy_space

    soft = Experiment("soft", space=toy_space(), objectives=["score"], seed=0)
    soft.run("random", Slow(), timeout=0.1)
    assert [t.state for t in soft.trials] == [TrialState.COMPLETE]  # the started trial runs to its end

    hard = Experiment("hard", space=toy_space(), objectives=["score"], seed=0)
    hard.run("random", Slow(), timeout=0.1, hard_timeout=True)
    (trial,) = hard.trials
    assert trial.state is TrialState.PRUNED and 3 <= trial.metrics["epochs"] < 10
