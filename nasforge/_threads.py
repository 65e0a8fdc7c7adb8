"""CPU facts every layer may use: how many CPUs this process may run on, OpenMP's wait policy, and
a block with a set number of torch threads.

Low-level on purpose (it imports only :mod:`nasforge.errors`), so data, nn, hardware, estimate, the
strategies and the executors can share it. It must not import torch at module level: ``import
nasforge`` runs :func:`calm_openmp` from here before anything loads torch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import TracebackType

from nasforge.errors import ConfigError

__all__ = ["SPINCOUNT", "available_cpus", "calm_openmp", "torch_threads"]

#: The OpenMP spin count nasforge sets unless the user chose a wait policy. PyTorch's CPU build uses
#: GNU OpenMP, whose threads busy-wait for up to 300,000 spins (several ms) at every barrier before
#: they sleep. On a quiet machine that costs nothing; beside another CPU-bound process each spinning
#: thread steals the core its partner needs, and two searches on 2 cores ran 7.6x slower than one
#: (79 s vs 10.4 s, docs/benchmarks.md). 1,000 spins kept the quiet speed and removed the collapse.
SPINCOUNT = "1000"


def calm_openmp(environ: dict[str, str] | None = None) -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPINCOUNT` unless the user set it or ``OMP_WAIT_POLICY``.

    GNU OpenMP reads the variable once, when torch's ``libgomp`` is loaded, so this only helps when
    it runs before ``import torch`` (``import nasforge`` does it first thing). Child processes
    (the process executor, Ray workers) inherit it.

    Args:
        environ: the environment to change; default ``os.environ``.

    Returns:
        True if the variable was set here, False if the user's choice was kept.

    Example:
        >>> env = {}
        >>> calm_openmp(env), env
        (True, {'GOMP_SPINCOUNT': '1000'})
        >>> calm_openmp({"OMP_WAIT_POLICY": "ACTIVE"})
        False
    """
    env = os.environ if environ is None else environ
    if "GOMP_SPINCOUNT" in env or "OMP_WAIT_POLICY" in env:
        return False
    env["GOMP_SPINCOUNT"] = SPINCOUNT
    return True


def _cgroup_cpu_limit(root: Path) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (v2 ``cpu.max`` or v1 CFS files), or None."""
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        if quota != "max" and float(period) > 0:
            return float(quota) / float(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = float((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers).

    Args:
        cgroup_root: where the cgroup file system is mounted (a test points it elsewhere).

    Returns:
        At least 1.

    Example:
        >>> available_cpus() >= 1
        True
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


class torch_threads:  # lower case: used like a function, ``with torch_threads(2): ...``
    """Context manager that sets ``torch.set_num_threads(n)`` inside and restores it on exit.

    Args:
        n: number of intra-op threads inside the block; ``None`` leaves the setting unchanged.

    Raises:
        ConfigError: if ``n`` is not None and smaller than 1.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """

    def __init__(self, n: int | None) -> None:
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {n=}")
        self.n = n
        self._previous: int | None = None

    def __enter__(self) -> torch_threads:
        if self.n is not None:
            import torch  # this module loads before torch (see the module docstring)

            self._previous = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            import torch

            torch.set_num_threads(self._previous)
            self._previous = None
