"""DetectionTrainEstimator: learns on shapes-det, reports each epoch, runs a search, prunes, checks input."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.data import load_detection
from nasforge.errors import ConfigError
from nasforge.estimate import TrialContext
from nasforge.estimate._detection import DetectionTrainEstimator, train_detector
from nasforge.experiment import Experiment, TrialState
from nasforge.registry import ESTIMATORS
from nasforge.space import DetectorSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task():
    return load_detection("shapes-det", n_train=128, n_val=32, n_test=16, seed=0)


def small_space(**options):
    stages = [{"width": [16]}, {"width": [16]}, {"width": [16]}]
    base = dict(stem=[8], stages=stages, neck_width=[16], head_width=[16], head_depth=[1], scales=[2])
    return DetectorSpace(**{**base, **options})


def test_learns_and_reports_every_epoch(task):
    space = small_space(block={"op": ["k1kx"], "depth": [1], "kernel": [3], "bottleneck": [0.5]})
    arch = space.bind(task.input_shape, task.num_classes).sample(np.random.default_rng(0))
    est = ESTIMATORS.create("train_det", task=task, epochs=6, batch_size=16, lr=5e-3, threads=1)
    assert isinstance(est, DetectionTrainEstimator) and est.max_step == 6
    ctx = TrialContext(0, seed=0)
    metrics = est.evaluate(arch, ctx)
    assert sorted(ctx.reported) == [1, 2, 3, 4, 5, 6]
    assert ctx.reported[6] == metrics["val_map"] and ctx.partial == metrics
    assert metrics["val_map"] > 0.1 and metrics["val_map_50"] >= metrics["val_map"]  # measured: 0.34 / 0.67
    assert metrics["steps"] == 6 * 8 and metrics["epochs"] == 6 and metrics["resolution"] == 64
    assert metrics["params"] > 0 and metrics["flops"] > 0 and metrics["train_seconds"] > 0
    again = est.evaluate(arch, TrialContext(0, seed=0))
    assert again["val_map"] == metrics["val_map"]  # seeded


def test_two_trial_search_at_low_fidelity(task):
    est = DetectionTrainEstimator(
        task,
        epochs=2,
        steps_per_epoch=3,
        fraction=0.5,
        val_fraction=0.5,
        resolution=32,
        batch_size=8,
        threads=1,
    )
    exp = Experiment("det", space=small_space(block={"depth": [1]}), objectives=["val_map"], seed=0)
    exp.run("random", est, n_trials=2)
    assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 2
    m = exp.trials[0].metrics
    assert m["resolution"] == 32 and m["fraction"] == 0.5 and m["steps"] == 6
    assert exp.space.input_shape == (3, 64, 64) and exp.space.num_classes == 3
    best = exp.best()
    assert best is not None
    final = best.train(task, epochs=1, steps_per_epoch=2, batch_size=8, threads=1)  # a DetectionTask
    assert final.task == "detection" and "test_map" in final.metrics


def test_scheduler_prunes_on_reported_map(task):
    est = DetectionTrainEstimator(task, epochs=3, steps_per_epoch=1, resolution=32, batch_size=8, threads=1)
    exp = Experiment("det", space=small_space(block={"depth": [1]}), objectives=["val_map"], seed=1)
    exp.run("random", est, n_trials=4, scheduler="median")
    states = [t.state for t in exp.trials]
    assert len(states) == 4 and TrialState.COMPLETE in states


def test_train_detector_scores_val_and_test(task):
    space = small_space(block={"op": ["conv"], "depth": [1], "kernel": [3]}).bind(task.input_shape, 3)
    trained = train_detector(space.sample(np.random.default_rng(0)), task, epochs=1, batch_size=16, threads=1)
    assert {"val_map", "val_map_50", "test_map", "test_map_50", "params"} <= set(trained.metrics)
    assert trained.task == "detection" and trained.class_names == task.class_names


def test_bad_input_is_a_clear_error(task):
    from nasforge import datasets

    with pytest.raises(ConfigError, match=r"DetectionTask.*TrainEstimator"):
        DetectionTrainEstimator(datasets.load("digits"))
    with pytest.raises(ConfigError, match="epochs"):
        DetectionTrainEstimator(task, epochs=0)
    with pytest.raises(ConfigError, match="fraction"):
        DetectionTrainEstimator(task, fraction=1.5)
    with pytest.raises(ConfigError, match="resolution"):
        DetectionTrainEstimator(task, resolution=-3)


def test_runs_in_child_processes(task):
    est = DetectionTrainEstimator(task, epochs=1, steps_per_epoch=1, resolution=32, batch_size=8, threads=1)
    exp = Experiment("det", space=small_space(block={"depth": [1]}), objectives=["val_map"], seed=0)
    exp.run("random", est, n_trials=2, executor="process")
    assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 2


def _slow_arch(task):
    space = small_space(block={"op": ["conv"], "depth": [1], "kernel": [3]}).bind(task.input_shape, 3)
    arch = space.sample(np.random.default_rng(0))
    # counting FLOPs imports torch._dynamo the first time (seconds), before the training that
    # the deadline tests time: done here, so they time the same alone as in the whole module
    DetectionTrainEstimator._counts(arch.build(task.input_shape, 3), task)
    return arch


@pytest.fixture(scope="module")
def long_epochs():
    """shapes-det with 1,024 training images: an epoch of 256 steps of 4 images lasts seconds on any
    machine, so a deadline of 0.5 s falls inside the first one."""
    return load_detection("shapes-det", n_train=1024, n_val=32, n_test=16, seed=0)


def test_a_trial_past_the_search_deadline_is_stopped_between_steps_and_pruned(long_epochs):
    import time

    from nasforge.errors import TrialPruned

    # one epoch is 256 steps of 4 images at 64x64, far longer than the deadline gives (measured:
    # 8 to more than 32 steps fit, by the machine's load): before this the trial stopped only at an
    # epoch's end, after a validation pass
    task = long_epochs
    est = DetectionTrainEstimator(task, epochs=1000, batch_size=4, threads=1)
    arch = _slow_arch(task)
    reported: list[int] = []
    ctx = TrialContext(
        0, seed=0, deadline=time.time() + 0.5, reporter=lambda step, value: reported.append(step)
    )
    start = time.monotonic()
    with pytest.raises(TrialPruned, match="stopped at epoch 1: the search's time budget is spent"):
        est.evaluate(arch, ctx)
    assert time.monotonic() - start < 0.5 + 1.0  # the cut epoch's validation pass, no more
    assert reported == [1] and ctx.partial["epochs"] == 1
    assert 1 <= ctx.partial["steps"] < 256  # stopped within the first epoch
    assert 0 <= ctx.partial["val_map"] <= 1  # what the pruned trial records


def test_a_search_with_a_hard_timeout_prunes_the_running_detection_trial(long_epochs):
    import time

    task = long_epochs
    _slow_arch(task)  # the first FLOP count's imports
    est = DetectionTrainEstimator(task, epochs=1000, batch_size=4, threads=1)
    exp = Experiment("det", space=small_space(block={"depth": [1]}), objectives=["val_map"], seed=0)
    start = time.monotonic()
    exp.run("random", est, n_trials=3, timeout=0.5, hard_timeout=True)
    assert time.monotonic() - start < 0.5 + 1.5
    assert exp.trials and all(t.state is TrialState.PRUNED for t in exp.trials)  # none ran 1000 epochs
    assert all("val_map" in t.metrics and t.metrics["epochs"] == 1 for t in exp.trials)


def test_train_detector_keeps_its_time_limit_with_the_scoring_after_it(task, long_epochs):
    import time

    arch = _slow_arch(long_epochs)
    start = time.monotonic()
    trained = train_detector(arch, long_epochs, epochs=1000, batch_size=4, threads=1, time_limit=0.5)
    assert time.monotonic() - start < 0.5 + 1.0  # validation and test mAP included
    m = trained.metrics
    assert m["cut_by_time_limit"] is True and m["epochs"] == 1
    assert {"val_map", "test_map"} <= set(m) and m["seconds"] < 0.5 + 1.0
    full = train_detector(arch, task, epochs=1, steps_per_epoch=1, batch_size=8, threads=1, time_limit=60)
    assert full.metrics["cut_by_time_limit"] is False and full.metrics["epochs"] == 1
