"""Estimator interface and the per-trial context handed to it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["Estimator", "TrialContext"]


class TrialContext:
    """What an estimator may use while evaluating one trial.

    Attributes:
        number: the trial number.
        seed: a seed derived from the experiment seed and the trial number (use it for weight
            initialisation and data order, so a trial is reproducible).
        run_dir: the experiment's run directory, or None.
        deadline: when the search's time budget stops this trial (a :func:`time.time` value), or
            None; an estimator that trains stops between steps in time to finish its evaluation
            (:meth:`time_left`) and lets :class:`~nasforge.errors.TrialPruned` say so.
    """

    def __init__(
        self,
        number: int,
        seed: int,
        *,
        run_dir: Path | None = None,
        reporter: Callable[[int, float], None] | None = None,
        milestones: Callable[[int], list[int]] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.number = number
        self.seed = seed
        self.run_dir = run_dir
        self.deadline = deadline
        self._reporter = reporter
        self._milestones = milestones
        self.reported: dict[int, float] = {}
        self.partial: dict[str, Any] = {}

    def report(self, step: int, value: float, metrics: Mapping[str, Any] | None = None) -> None:
        """Record an intermediate value of the primary objective at ``step`` (e.g. the epoch).

        ``metrics`` are what the trial has produced so far (``{"epochs": 3, "train_seconds": 41.0}``,
        a simulated cost as ``sim_seconds``): when the trial is stopped here, they become its
        recorded metrics, so its cost is not lost.

        Early-stopping schedulers decide here; when they stop the trial this raises
        :class:`nasforge.errors.TrialPruned`, which the estimator should let propagate.
        """
        self.reported[int(step)] = float(value)
        self.partial = dict(metrics or {})
        if self._reporter is not None:
            self._reporter(int(step), float(value))

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (at least a millisecond, so it is a valid time limit), or
        None without one."""
        if self.deadline is None:
            return None
        return max(0.001, self.deadline - time.time())

    def milestones(self, limit: int) -> list[int]:
        """Steps below ``limit`` at which the experiment's scheduler will decide on this trial.

        Empty without a scheduler. An estimator that can report any step cheaply (a surrogate)
        reports these; one that trains reports every epoch anyway.
        """
        return [] if self._milestones is None else self._milestones(int(limit))


class Estimator(ABC):
    """Estimates the quality of an architecture: the expensive step of every trial.

    Subclasses implement :meth:`evaluate`. An estimator that trains on a task exposes it as
    ``task`` so the experiment can tell the space the input shape and class count.
    """

    task: Task | None = None
    #: the largest step the estimator reports (its full budget: training epochs), or None
    max_step: int | None = None
    #: the width multiplier of the networks it evaluates (channels times ``width``; < 1 is a cheaper,
    #: lower-fidelity network): the constraint screening counts ``params`` and ``flops`` at it
    width: float = 1.0
    #: the kinds of task it can estimate on, ``"classification"`` and / or ``"detection"``: a search
    #: checks them against its data before loading anything
    task_kinds: tuple[str, ...] = ("classification",)

    #: the zero-cost proxies whose scores :meth:`evaluate` returns (:class:`ZeroCostEstimator`), so a
    #: caller can check proxy names before scoring; None: not a proxy estimator
    proxies: tuple[str, ...] | None = None

    def cheap_metrics(self, arch: Architecture, names: AbstractSet[str]) -> dict[str, float]:
        """Those of ``names`` this estimator knows without evaluating ``arch`` (a table lookup, a
        latency measured on the untrained network).

        The experiment asks before every trial for the metrics its constraints name and checks
        the constraints on the answer, so an infeasible architecture is never evaluated and does
        not count toward ``n_trials``: this is the ``lookup`` of its
        :class:`~nasforge.hardware.Profiler`, whose :meth:`~nasforge.hardware.Profiler.screen`
        counts ``params`` and ``flops`` itself (on a network built on the ``meta`` device at
        :attr:`width`). Default: none.
        """
        return {}

    @abstractmethod
    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        """Return metrics of ``arch`` (e.g. ``{"val_accuracy": 0.97, "params": 12345}``).

        Raise :class:`nasforge.errors.TrialFailed` to fail the trial with a reason; any other
        exception fails it too, with its traceback recorded.
        """
