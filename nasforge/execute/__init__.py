"""Executors: where each trial's estimator runs (this process, one process per trial, Ray).

Example:
    >>> import nasforge as nf
    >>> ex = nf.execute.make_executor("process", concurrency=2, time_limit=600)
    >>> ex.describe()
    'process (2 at a time, limits 600 s per trial)'
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import ConfigError
from nasforge.execute._base import Executor, InProcessExecutor, Outcome, TrialJob, run_job
from nasforge.registry import EXECUTORS

__all__ = ["Executor", "InProcessExecutor", "Outcome", "TrialJob", "make_executor", "run_job"]


def make_executor(executor: Executor | str | None = None, **options: Any) -> Executor:
    """An executor from a registered name (``inprocess``, ``process``, ``ray``) and its options.

    None gives the in-process executor; an :class:`Executor` passes through (without options).
    """
    if executor is None:
        executor = "inprocess"
    if isinstance(executor, Executor):
        if options:
            raise ConfigError("executor options go with an executor name, not an instance")
        return executor
    if not isinstance(executor, str):
        raise ConfigError(f"executor must be a name or an Executor, got {type(executor).__name__}")
    made: Executor = EXECUTORS.create(executor, **options)
    return made
