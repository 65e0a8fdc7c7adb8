"""GPUs for trials without a GPU: the process executor's CUDA_VISIBLE_DEVICES rotation (real
child processes, each reporting the environment it got) and the Ray resource request (no cluster)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest
import torch

from nasforge._device import visible_gpus
from nasforge.errors import ConfigError, TrialFailed
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.execute._base import TrialJob
from nasforge.execute._process import ProcessExecutor
from nasforge.space import Architecture
from nasforge.testing import toy_space


class Env(Estimator):
    """Reports the CUDA_VISIBLE_DEVICES its process was given, after a pause (so trials overlap)."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        time.sleep(0.3)
        return {"score": 1.0, "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")}


def _jobs(n: int) -> list[TrialJob]:
    rng = np.random.default_rng(0)
    space, est = toy_space(), Env()
    return [TrialJob(i, space.sample(rng), i, est) for i in range(n)]


def _run_all(ex: ProcessExecutor, jobs: list[TrialJob]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    pending = list(jobs)
    ex.start()
    try:
        while pending or ex.running:
            while pending and len(ex.running) < ex.concurrency:
                ex.submit(pending.pop(0), lambda *a: None)
            for o in ex.wait(5):
                assert o.error is None, o.error
                out[o.number] = o.metrics["gpu"]
    finally:
        ex.shutdown()
    return out


def test_each_trial_process_gets_the_least_busy_gpu() -> None:
    ex = ProcessExecutor(gpus=["0", "1"], trials_per_gpu=2)
    assert ex.concurrency == 4 and "GPUs 0,1 (2 trial(s) per GPU)" in ex.describe()
    ex.start()
    try:
        jobs = _jobs(5)
        given = []
        for job in jobs[:4]:
            given.append(ex.next_gpu())
            ex.submit(job, lambda *a: None)
        assert given == ["0", "1", "0", "1"]
        got: dict[int, str] = {}
        while len(got) < 4:
            got.update({o.number: o.metrics["gpu"] for o in ex.wait(5)})
        assert got == {0: "0", 1: "1", 2: "0", 3: "1"}  # the env each child process saw
    finally:
        ex.shutdown()


def test_a_freed_gpu_is_reused_first() -> None:
    ex = ProcessExecutor(gpus=["3", "5"], trials_per_gpu=1)
    ex.start()
    try:
        jobs = _jobs(3)
        ex.submit(jobs[0], lambda *a: None)  # -> 3
        ex.submit(jobs[1], lambda *a: None)  # -> 5
        assert ex.next_gpu() in ("3", "5")
        done = []
        while not done:
            done = ex.wait(5)
        freed = {"0": "3", "1": "5"}[str(done[0].number)]
        assert ex.next_gpu() == freed
    finally:
        ex.shutdown()


def test_a_whole_search_rotates_over_the_gpus() -> None:
    seen = _run_all(ProcessExecutor(gpus=[0, 1], trials_per_gpu=1), _jobs(6))
    assert sorted(seen) == list(range(6)) and set(seen.values()) == {"0", "1"}


def test_no_gpus_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ex = ProcessExecutor(concurrency=2, gpus=[])
    assert ex.concurrency == 2 and ex.next_gpu() is None
    assert set(_run_all(ex, _jobs(2)).values()) == {"<unset>"}


def test_auto_hands_out_the_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    ex = ProcessExecutor(trials_per_gpu=3)
    assert ex.gpus == ["2", "7"] and ex.concurrency == 6
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert ProcessExecutor().concurrency == 1  # no GPU: one trial at a time, as before


def test_gpu_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"concurrency 5 is more than the GPU slots: 2 GPU\(s\) x 2"):
        ProcessExecutor(concurrency=5, gpus=[0, 1], trials_per_gpu=2)
    with pytest.raises(ConfigError, match="trials_per_gpu must be a positive integer"):
        ProcessExecutor(gpus=[0], trials_per_gpu=0)
    with pytest.raises(ConfigError, match="distinct GPU ids"):
        ProcessExecutor(gpus=[0, 0])


def test_forking_after_cuda_was_initialised_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasforge.execute._process as process

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "")  # restored (or removed) afterwards
    monkeypatch.delenv("PYTORCH_NVML_BASED_CUDA_CHECK")
    monkeypatch.setattr(process, "_cuda_initialized", lambda: True)
    ex = ProcessExecutor(gpus=["0"])
    ex.start()
    try:
        assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"  # is_available() stays fork-safe
        with pytest.raises(ConfigError, match="CUDA is already initialised in this process"):
            ex.submit(_jobs(1)[0], lambda *a: None)
        assert ex.running == []
    finally:
        ex.shutdown()
    cpu_only = ProcessExecutor(gpus=[])  # no GPU handed out: nothing to refuse
    cpu_only.start()
    try:
        cpu_only.submit(_jobs(1)[0], lambda *a: None)
        assert [o.error for o in cpu_only.wait(10)] == [None]
    finally:
        cpu_only.shutdown()


# --------------------------------------------------------------------------- Ray, without a cluster
def test_the_ray_request_asks_for_the_gpus_per_trial() -> None:
    from nasforge.execute._ray import trial_options

    assert trial_options(1, 0) == {"num_cpus": 1.0, "num_gpus": 0.0, "max_retries": 0}
    assert trial_options(2, 0.5)["num_gpus"] == 0.5


def test_gpus_per_trial_on_a_cluster_without_gpus_is_one_line() -> None:
    from nasforge.execute._ray import check_cluster_gpus

    check_cluster_gpus({"CPU": 4.0}, 0)
    check_cluster_gpus({"CPU": 4.0, "GPU": 1.0}, 0.25)
    with pytest.raises(ConfigError) as info:
        check_cluster_gpus({"CPU": 4.0}, 1)
    assert "\n" not in str(info.value) and "--gpus-per-trial 1 but the Ray cluster has no GPU" in str(
        info.value
    )
    with pytest.raises(ConfigError, match="has 2 GPU"):
        check_cluster_gpus({"GPU": 2.0}, 3)


def test_a_trial_uses_the_gpu_ray_assigned() -> None:
    from nasforge.execute._ray import assigned_gpus

    assert assigned_gpus([], 0) == ""  # nothing reserved: no GPU seen (Ray would leave them all visible)
    assert assigned_gpus([3], 1) == "3" and assigned_gpus(["1", "2"], 2) == "1,2"
    with pytest.raises(TrialFailed, match="Ray assigned none"):
        assigned_gpus([], 0.5)


@pytest.mark.skipif(
    torch.cuda.device_count() == 0 or torch.cuda.is_initialized(),  # device_count: no cuInit here
    reason="needs a CUDA GPU not yet used by this test process (forked trials must initialise CUDA)",
)
def test_process_trials_train_on_the_gpus_they_were_handed() -> None:
    import nasforge as nf
    from nasforge.experiment import Experiment

    task = nf.datasets.load("digits")
    exp = Experiment("gpus", space=nf.spaces.ChainCNN(depth=(1, 2), layer={"filters": [8]}), seed=0)
    exp.run(
        "random",
        nf.TrainEstimator(task, epochs=1, device="auto"),
        n_trials=4,
        executor="process",
        executor_options={"trials_per_gpu": 2},
    )
    done = [t for t in exp.trials if t.state.value == "COMPLETE"]
    assert len(done) == 4 and {t.metrics["device"] for t in done} == {"cuda:0"}
    assert {t.metrics["cuda_visible_devices"] for t in done} <= set(visible_gpus())
