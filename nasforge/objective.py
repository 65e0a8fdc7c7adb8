"""Objectives: which metrics to optimise, in which direction, under which constraints.

Example:
    >>> obj = Objective(["val_accuracy", "-latency_ms"], constraints=["params <= 100000"])
    >>> obj.directions
    ('maximize', 'minimize')
    >>> obj.feasible({"val_accuracy": 0.9, "latency_ms": 2.0, "params": 5e4})
    True
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasforge.errors import ConfigError, TrialFailed

if TYPE_CHECKING:
    from nasforge.trial import Trial

__all__ = ["MetricConstraint", "Objective"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$")


@dataclass(frozen=True)
class MetricConstraint:
    """``metric op bound``, e.g. ``latency_ms <= 3``; parsed from a string by :meth:`parse`."""

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"constraint operator must be one of {list(_OPS)}, got {self.op!r}")

    @classmethod
    def parse(cls, text: str) -> MetricConstraint:
        match = _CONSTRAINT_RE.match(text)
        if not match:
            raise ConfigError(
                f"cannot read constraint {text!r}; write it as 'metric <= number', e.g. 'params <= 100000'"
            )
        try:
            bound = float(match.group(3).replace("_", ""))
        except ValueError:
            raise ConfigError(f"constraint {text!r}: {match.group(3)!r} is not a number") from None
        return cls(match.group(1), match.group(2), bound)

    def holds(self, metrics: Mapping[str, float]) -> bool:
        value = metrics.get(self.metric)
        return value is not None and math.isfinite(value) and _OPS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


class Objective:
    """Metric names with directions, plus metric constraints.

    Args:
        metrics: names to optimise; a leading ``-`` means minimise (``"-latency_ms"``), otherwise
            maximise. The first is the primary objective used to rank single-objective searches.
        constraints: ``"metric <= bound"`` strings or :class:`MetricConstraint` objects; a trial
            violating one is recorded as infeasible and never chosen as best.
    """

    def __init__(
        self,
        metrics: Sequence[str] | str = ("val_accuracy",),
        *,
        constraints: Sequence[str | MetricConstraint] = (),
    ) -> None:
        if isinstance(metrics, str):
            metrics = [metrics]
        if not metrics:
            raise ConfigError("objectives need at least one metric name, e.g. ['val_accuracy']")
        names, directions = [], []
        for m in metrics:
            if not isinstance(m, str) or not m.lstrip("-+"):
                raise ConfigError(
                    f"objective names are strings like 'val_accuracy' or '-latency_ms', got {m!r}"
                )
            names.append(m.lstrip("-+"))
            directions.append("minimize" if m.startswith("-") else "maximize")
        if len(set(names)) != len(names):
            raise ConfigError(f"objective metrics must be distinct, got {list(metrics)}")
        self.names: tuple[str, ...] = tuple(names)
        self.directions: tuple[str, ...] = tuple(directions)
        self.constraints: tuple[MetricConstraint, ...] = tuple(
            c if isinstance(c, MetricConstraint) else MetricConstraint.parse(c) for c in constraints
        )

    @property
    def specs(self) -> list[str]:
        """The metric names as given, with ``-`` for minimised ones."""
        return [
            ("-" if d == "minimize" else "") + n for n, d in zip(self.names, self.directions, strict=True)
        ]

    def __repr__(self) -> str:
        cons = f", constraints={[str(c) for c in self.constraints]}" if self.constraints else ""
        return f"Objective({self.specs}{cons})"

    def values(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        """The objective values of ``metrics``.

        Raises:
            TrialFailed: a metric is missing or not a finite number.
        """
        out = []
        for name in self.names:
            if name not in metrics:
                raise TrialFailed(
                    f"the estimator returned no '{name}' metric (it returned {sorted(metrics)}); "
                    "change the objectives or the estimator"
                )
            value = float(metrics[name])
            if not math.isfinite(value):
                raise TrialFailed(f"objective metric '{name}' is {value}")
            out.append(value)
        return tuple(out)

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        """Whether every constraint holds (a missing metric counts as violated)."""
        return all(c.holds(metrics) for c in self.constraints)

    def violations(self, metrics: Mapping[str, float]) -> list[str]:
        """The constraints that do not hold, as text."""
        return [str(c) for c in self.constraints if not c.holds(metrics)]

    def signed(self, values: Sequence[float]) -> tuple[float, ...]:
        """Values turned so that larger is better for every objective."""
        return tuple(v if d == "maximize" else -v for v, d in zip(values, self.directions, strict=True))

    def score(self, trial: Trial) -> float:
        """Scalar fitness, larger is better: the signed primary value; ``-inf`` if unusable."""
        if trial.values is None or not trial.feasible:
            return -math.inf
        return self.signed(trial.values)[0]

    def best(self, trials: Sequence[Trial]) -> Trial | None:
        """The feasible COMPLETE trial with the best primary value (earliest on ties)."""
        candidates = [t for t in trials if t.values is not None and t.feasible]
        if not candidates:
            return None
        return max(candidates, key=lambda t: (self.score(t), -t.number))

    def pareto_front(self, trials: Sequence[Trial]) -> list[Trial]:
        """Feasible COMPLETE trials that no other such trial dominates, sorted by number."""
        pts = [(t, self.signed(t.values)) for t in trials if t.values is not None and t.feasible]
        front = []
        for t, v in pts:
            dominated = any(
                all(a >= b for a, b in zip(w, v, strict=True))
                and any(a > b for a, b in zip(w, v, strict=True))
                for _, w in pts
            )
            if not dominated:
                front.append(t)
        return sorted(front, key=lambda t: t.number)
