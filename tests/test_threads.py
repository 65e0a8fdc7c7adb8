"""CPU count and OpenMP wait policy (nasforge._threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge._threads import SPINCOUNT, available_cpus, calm_openmp


def test_calm_openmp_keeps_the_users_choice() -> None:
    env: dict[str, str] = {}
    assert calm_openmp(env) and env == {"GOMP_SPINCOUNT": SPINCOUNT}
    for given in ({"GOMP_SPINCOUNT": "5"}, {"OMP_WAIT_POLICY": "active"}):
        env = dict(given)
        assert not calm_openmp(env) and env == given


def test_import_nasforge_sets_the_spin_count_before_torch_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = "import sys, os, nasforge; print('torch' in sys.modules, os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", SPINCOUNT]
    env["GOMP_SPINCOUNT"] = "300000"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "300000"]


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "50000 100000\n"}, 1),  # half a CPU still gets one thread
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage"}, None),
        ({}, None),
    ],
)
def test_available_cpus_honours_a_cgroup_quota(
    tmp_path: Path, files: dict[str, str], limit: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    expected = _affinity() if limit is None else min(_affinity(), limit)
    assert available_cpus(tmp_path) == expected


def test_small_training_steps_run_on_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.estimate._setup import SMALL_STEP_VALUES, default_threads, values_per_step

    monkeypatch.delenv("NASFORGE_THREADS", raising=False)
    digits_step = values_per_step((1, 8, 8), 32)
    assert digits_step == 2_048 <= SMALL_STEP_VALUES
    assert default_threads(digits_step) == 1
    assert default_threads(values_per_step((1, 28, 28), 128)) == available_cpus()
    assert default_threads() == available_cpus()  # no step given: every core, as before
    monkeypatch.setenv("NASFORGE_THREADS", "3")  # an executor's share wins
    assert default_threads(digits_step) == 3


def test_a_digits_trial_trains_on_one_thread_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    import nasforge as nf

    monkeypatch.delenv("NASFORGE_THREADS", raising=False)
    task = nf.datasets.load("digits")
    assert nf.TrainEstimator(task, epochs=1)._threads() == 1
    assert nf.TrainEstimator(task, epochs=1, batch_size=1024)._threads() == available_cpus()
    assert nf.TrainEstimator(task, epochs=1, threads=2)._threads() == 2
