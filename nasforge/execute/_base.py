"""The executor interface: where the estimator of each trial runs.

The driver (:meth:`nasforge.Experiment.run`) owns ask, tell and storage. It hands an executor one
:class:`TrialJob` per running trial; the executor runs ``estimator.evaluate`` somewhere (this
process, a child process, a Ray worker), forwards every ``ctx.report`` to the driver's ``decide``
callback (which records it and may stop the trial) and gives back one :class:`Outcome` per job.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import TrialFailed, TrialPruned

if TYPE_CHECKING:
    from nasforge.estimate._base import Estimator
    from nasforge.space import Architecture

__all__ = ["Decide", "Executor", "Outcome", "TrialJob", "run_job"]

#: ``decide(number, step, value) -> reason or None``: the driver records a reported value and
#: returns why the trial must stop now (a scheduler's verdict, the search's deadline), or None.
Decide = Callable[[int, int, float], "str | None"]


@dataclass
class TrialJob:
    """One trial to evaluate: everything the estimator needs, nothing of the driver."""

    number: int
    arch: Architecture
    seed: int
    estimator: Estimator
    run_dir: Path | None = None
    milestones: Mapping[int, list[int]] = field(default_factory=dict)
    #: when the search's hard time budget stops this trial (a :func:`time.time` value), or None
    deadline: float | None = None


@dataclass
class Outcome:
    """What one job produced.

    Attributes:
        number: the trial number.
        metrics: the estimator's metrics; for a stopped or failed trial, those it reported last.
        pruned: stopped early (by the scheduler, the deadline).
        error: why it failed (a message or a traceback), else None.
    """

    number: int
    metrics: dict[str, Any]
    pruned: bool = False
    error: str | None = None


def run_job(job: TrialJob, report: Callable[[int, float], str | None]) -> Outcome:
    """Evaluate ``job`` here; ``report(step, value)`` returns a reason to stop, or None.

    Every failure of the estimator becomes a failed :class:`Outcome` (with its traceback);
    KeyboardInterrupt propagates.
    """
    from nasforge.estimate._base import TrialContext

    def reporter(step: int, value: float) -> None:
        reason = report(step, value)
        if reason is not None:
            raise TrialPruned(reason)

    def milestones(limit: int) -> list[int]:
        return list(job.milestones.get(limit, []))

    ctx = TrialContext(
        job.number,
        job.seed,
        run_dir=job.run_dir,
        reporter=reporter,
        milestones=milestones,
        deadline=job.deadline,
    )
    try:
        metrics = job.estimator.evaluate(job.arch, ctx)
    except TrialPruned:
        return Outcome(job.number, {**ctx.partial, "step": max(ctx.reported, default=0)}, pruned=True)
    except TrialFailed as exc:
        return Outcome(job.number, dict(ctx.partial), error=str(exc))
    except Exception as exc:  # any crash fails only this trial
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return Outcome(job.number, dict(ctx.partial), error=text)
    return Outcome(job.number, dict(metrics))


class Executor(ABC):
    """Runs trial jobs, up to :attr:`concurrency` at a time.

    Call order: :meth:`start` once; then any interleaving of :meth:`submit` (while
    :attr:`running` < :attr:`concurrency`) and :meth:`wait`; :meth:`stop_all` on an interruption;
    :meth:`shutdown` at the end (also after an error).

    Attributes:
        name: the registered name (``inprocess``, ``process``, ``ray``).
        concurrency: how many trials may run at once.
    """

    name: str = "executor"
    concurrency: int = 1

    def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (processes, a cluster connection) before the first job."""

    @abstractmethod
    def submit(self, job: TrialJob, decide: Decide) -> None:
        """Start ``job``; its reports go to ``decide``."""

    @abstractmethod
    def wait(self, timeout: float) -> list[Outcome]:
        """Serve reports of running jobs for at most ``timeout`` seconds; return those that ended
        (returns as soon as one ends)."""

    @property
    @abstractmethod
    def running(self) -> list[int]:
        """Numbers of the trials submitted and not yet returned by :meth:`wait`."""

    @abstractmethod
    def stop_all(self) -> list[int]:
        """Stop every running job at once (Ctrl-C); return their trial numbers."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`start` acquired."""

    def describe(self) -> str:
        """One line for messages: the executor and its limits."""
        return f"{self.name} ({self.concurrency} at a time)"


class InProcessExecutor(Executor):
    """Runs each trial in the driver process, one at a time (the default: no overhead).

    A crash of the estimator's Python code fails only its trial; a hard crash (segfault, out of
    memory) takes the search down with it; use ``process`` for isolation.
    """

    name = "inprocess"

    def __init__(self) -> None:
        self.concurrency = 1
        self._done: list[Outcome] = []
        self._current: int | None = None

    def submit(self, job: TrialJob, decide: Decide) -> None:
        self._current = job.number
        self._done.append(run_job(job, lambda step, value: decide(job.number, step, value)))
        self._current = None

    def wait(self, timeout: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    @property
    def running(self) -> list[int]:
        current = [] if self._current is None else [self._current]
        return current + [o.number for o in self._done]

    def stop_all(self) -> list[int]:
        stopped = [] if self._current is None else [self._current]
        self._current = None
        return stopped
