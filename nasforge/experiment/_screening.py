"""Constraint screening before training: architectures that break a constraint on a cheap metric
are recorded as screened (FAIL, never evaluated) instead of being trained.

Before a search, :func:`impossible_constraint` rejects a ``params`` / ``flops`` bound no network of
the space can meet; during it, :func:`infeasible_before_training` checks each proposal and
:class:`ScreenedStreak` gives up when a strategy proposes nothing else.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimate._base import Estimator
from nasforge.objective import MetricConstraint, Objective
from nasforge.space import Architecture, SearchSpace
from nasforge.trial import SCREENED, Trial

__all__ = [
    "CHEAP_METRICS",
    "MAX_SCREENED_IN_ROW",
    "ScreenedStreak",
    "impossible_constraint",
    "infeasible_before_training",
    "trained",
]

log = logging.getLogger("nasforge")

#: metrics computed from the built network alone, so their constraints are checked before training
CHEAP_METRICS = frozenset({"params", "flops"})  # the Profiler's SCREEN_COUNTS (hardware loads torch)
#: default of ``run(max_screened=...)``: a strategy that proposes this many screened-out
#: architectures in a row has nothing feasible left. A screened chain CNN costs its count on the
#: meta device plus one trial record in SQLite (measured 0.1-0.3 s each on 2 busy cores, most of it
#: Optuna writing the ~25 parameters), so 200 give up within a minute; a feasible region of 1% of
#: the space is still hit in 200 uniform proposals with 87% probability.
MAX_SCREENED_IN_ROW = 200


def infeasible_before_training(
    space: SearchSpace, objective: Objective, arch: Architecture, estimator: Estimator
) -> tuple[dict[str, Any], str] | None:
    """Check the constraints of ``objective`` on cheap metrics of ``arch`` before the estimator runs.

    The estimator answers what it knows without evaluating (:meth:`Estimator.cheap_metrics`:
    a table's latency, a measured latency); ``params`` and ``flops`` are counted on the
    network built on the ``"meta"`` device (no memory, no compute) at the estimator's width.
    A violated constraint fails the trial (screened) with the values found, costing no
    evaluation.

    Returns:
        ``(metrics, reason)`` for an infeasible architecture, else None.
    """
    if not objective.constraints:
        return None
    from nasforge.hardware import Profiler  # torch, when there are constraints

    profiler = Profiler(width=estimator.width, lookup=estimator.cheap_metrics)  # counts on "meta"
    metrics, violated = profiler.screen(arch, objective.constraints)
    if not violated:
        return None
    found = ", ".join(f"{k} = {v:,}" for k, v in metrics.items())
    return metrics, f"{SCREENED}: violates {', '.join(violated)} ({found}); not trained"


def impossible_constraint(space: SearchSpace, objective: Objective, estimator: Estimator) -> str | None:
    """Why a ``params`` / ``flops`` upper bound cannot be met by any architecture of ``space``, or None.

    Uses :meth:`SearchSpace.metric_floor`, a value no architecture goes below, at the estimator's
    width; None when the space cannot tell, or when the estimator measures the metric itself
    (its :meth:`~Estimator.cheap_metrics` answers for it), or when the bound can be met.
    """
    width = estimator.width
    for c in objective.constraints:
        if c.metric not in CHEAP_METRICS or c.op not in ("<", "<="):
            continue
        try:
            floor = space.metric_floor(c.metric, width=width)
        except NasforgeError:
            floor = None
        if floor is None or c.holds({c.metric: floor}):
            continue
        if type(estimator).cheap_metrics is not Estimator.cheap_metrics:
            try:  # an estimator of its own may count the metric another way
                probe = space.sample(np.random.default_rng(0))
                if c.metric in estimator.cheap_metrics(probe, frozenset({c.metric})):
                    continue
            except Exception:
                log.debug("cannot probe cheap_metrics of %s", type(estimator).__name__, exc_info=True)
        task = ""
        if space.input_shape is not None and space.num_classes is not None:
            shape = "x".join(str(d) for d in space.input_shape)
            task = f" for {shape} inputs and {space.num_classes} classes"
        unit = "parameters" if c.metric == "params" else "FLOPs"
        return (
            f"constraint {c} cannot be met: every network of the {space.name} space{task} has at "
            f"least {_number(floor)} {unit}; raise the bound, or change the space or dataset"
        )
    return None


class ScreenedStreak:
    """Proposals screened out in a row: how often each constraint was violated, and the value
    closest to its bound (the smallest ``params`` seen under ``params <= 10``)."""

    def __init__(self, constraints: Sequence[MetricConstraint]) -> None:
        self.constraints = list(constraints)
        self.count = 0
        self.violations: Counter[MetricConstraint] = Counter()
        self.closest: dict[MetricConstraint, float] = {}

    def add(self, metrics: Mapping[str, Any]) -> None:
        self.count += 1
        for c in self.constraints:
            value = metrics.get(c.metric)
            if value is None or c.holds(metrics):
                continue
            self.violations[c] += 1
            if isinstance(value, (int, float)) and math.isfinite(value):
                upper = c.op in ("<", "<=")
                old = self.closest.get(c)
                if old is None or (value < old if upper else value > old):
                    self.closest[c] = float(value)

    def message(self, *, before_any: bool) -> str:
        """``no architecture satisfies params <= 10 (smallest params seen 20): ...``"""
        always = [c for c in self.constraints if self.violations[c] == self.count]
        shown = always or [c for c in self.constraints if self.violations[c]]
        parts = []
        for c in shown:
            notes = [] if always else [f"violated by {self.violations[c]}"]
            if c in self.closest:
                what = "smallest" if c.op in ("<", "<=") else "largest"
                notes.append(f"{what} {c.metric} seen {_number(self.closest[c])}")
            parts.append(f"{c} ({', '.join(notes)})" if notes else str(c))
        which = " and ".join(parts)
        head = f"no architecture satisfies {which}" if always else f"no architecture satisfies all of {which}"
        when = "before any trial was trained" if before_any else "since the last trained trial"
        it = "it" if len(shown) == 1 else "them" if always else "one of them each"
        return (
            f"{head}: the last {self.count} proposals in a row violated {it} "
            f"{when}; loosen the constraint or narrow the space (max_screened sets how many proposals to try)"
        )


def trained(trial: Trial) -> bool:
    """Whether a trial got past the constraint screening to the estimator (or is there now)."""
    return not trial.screened and not (trial.interrupted and trial.error and "not evaluated" in trial.error)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.4g}"
