"""Trial records: one evaluation of one architecture, immutable once finished.

:class:`Trial` is the one record type: the experiment hands it to strategies, schedulers and
callbacks, and the storage writes and reads it (:class:`~nasforge.experiment.Storage`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nasforge.space import Architecture

__all__ = ["SCREENED", "Trial", "TrialState"]

#: how the error of a trial screened out before evaluation begins (a constraint on a cheap metric);
#: runs written before :attr:`Trial.screened` was stored are recognised by it
SCREENED = "infeasible before training"


class TrialState(str, enum.Enum):
    """Life cycle of a trial: RUNNING, then COMPLETE, PRUNED (stopped early) or FAIL."""

    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


@dataclass(frozen=True)
class Trial:
    """The record of one architecture evaluation.

    Attributes:
        number: 0-based position in the experiment.
        architecture: what was evaluated.
        state: see :class:`TrialState`.
        metrics: everything the estimator returned (``val_accuracy``, ``params``, ...).
        values: the objective values, in the objective's order (None unless COMPLETE).
        feasible: whether the objective's metric constraints hold.
        error: the failure reason (with traceback) of a FAIL trial.
        started, finished: UNIX timestamps.
        intermediate: values reported during evaluation (step -> value).
        interrupted: True for a FAIL trial whose process died or was stopped; its architecture is
            evaluated again on resume.
        screened: True for a FAIL trial that was never evaluated: a constraint on a cheap metric
            (``params``, ``flops``, a table's latency) ruled it out first. It does not count toward
            ``n_trials``. (A RUNNING trial :meth:`Experiment.evaluate` ruled out carries it until
            it is told.)
        worker: the id of the search process (worker) that ran it, when the storage knows it.
    """

    number: int
    architecture: Architecture
    state: TrialState
    metrics: Mapping[str, float] = field(default_factory=dict)
    values: tuple[float, ...] | None = None
    feasible: bool = True
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    interrupted: bool = False
    screened: bool = False
    worker: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "intermediate", MappingProxyType(dict(self.intermediate)))

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while running."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def params(self) -> Mapping[str, Any]:
        """The architecture's parameters (what the storage keeps of it)."""
        return self.architecture.params

    @property
    def status(self) -> str:
        """The state as reports count it: ``INTERRUPTED`` and ``SCREENED`` apart from other FAILs."""
        return "INTERRUPTED" if self.interrupted else "SCREENED" if self.screened else self.state.value

    @property
    def value(self) -> float | None:
        """The first objective value (None unless COMPLETE)."""
        return self.values[0] if self.values else None

    def train(self, task: Any, **options: Any) -> Any:
        """Train this architecture with a final budget and test it: :func:`nasforge.estimate.train_final`
        (``device="cuda"``, ``amp="bf16"`` and the other options are passed on), or
        :func:`nasforge.estimate.train_detector` for a :class:`~nasforge.data.DetectionTask`.

        Example:
            >>> model = exp.best().train(task, epochs=30, device="auto")  # doctest: +SKIP
        """
        from nasforge.data import DetectionTask
        from nasforge.estimate import train_detector, train_final

        if isinstance(task, DetectionTask):
            return train_detector(self.architecture, task, **options)
        return train_final(self.architecture, task, **options)

    def summary(self) -> dict[str, Any]:
        """A flat JSON-friendly row: number, state, key, values, metrics, error's last line."""
        row: dict[str, Any] = {
            "number": self.number,
            "state": self.state.value,
            "key": self.architecture.key,
            "feasible": self.feasible,
            "duration_s": None if self.duration is None else round(self.duration, 3),
        }
        for k, v in self.metrics.items():
            row[k] = v if not isinstance(v, float) or math.isfinite(v) else None
        if self.error:
            row["error"] = self.error.strip().splitlines()[-1]
        return row
