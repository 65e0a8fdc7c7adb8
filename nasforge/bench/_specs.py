"""What a benchmark run searches and how long: the benchmarks (:data:`BENCHMARKS`) and :class:`Budget`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nasforge.errors import ConfigError

__all__ = ["BENCHMARKS", "BenchSpec", "Budget"]


@dataclass(frozen=True)
class BenchSpec:
    """What a benchmark searches and what it reports.

    Attributes:
        name: the benchmark name (``"nb201"``).
        space: registered space name.
        estimator: registered estimator name (created with ``root=`` and ``options``).
        signal: metric the search maximises.
        report: metric reported for the incumbent (the architecture with the best signal so far).
        optimum: best possible reported value (for regret plots), or None if unknown.
        options: extra estimator keyword arguments.
        note: one line on the protocol, shown in tables and JSON.
        input_shape: the benchmark dataset's input (C, H, W); the space is bound to it, so that
            strategies that build networks (zero-cost proxies) build the benchmark's own.
        num_classes: its class count.
    """

    name: str
    space: str
    estimator: str
    signal: str
    report: str
    optimum: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    input_shape: tuple[int, int, int] = (3, 32, 32)  # all three tables are CIFAR-10
    num_classes: int = 10


BENCHMARKS: dict[str, BenchSpec] = {
    "nb201": BenchSpec(
        "nb201",
        space="nb201",
        estimator="nb201",
        signal="valid_acc_12ep",
        report="test_acc",
        optimum=94.3733,  # max test_acc of the CIFAR-10 table (indices 6111 and 13714)
        note="NAS-Bench-201 CIFAR-10: search on 12-epoch validation accuracy, report 200-epoch "
        "test accuracy (%) of the incumbent",
    ),
    "nb301": BenchSpec(
        "nb301",
        space="darts",
        estimator="nb301",
        signal="val_accuracy",
        report="val_accuracy",
        options={"epoch": 98},
        note="NAS-Bench-301 surrogate (YAHPO v2): search on and report predicted validation "
        "accuracy (0-1) at epoch 98; the surrogate predicts no test accuracy",
    ),
    "nb_macro": BenchSpec(
        "nb_macro",
        space="nb_macro",
        estimator="nb_macro",
        signal="test_acc",
        report="test_acc",
        optimum=93.126663,  # test_acc (mean of 3 seeds) of "22212220"
        note="NAS-Bench-Macro CIFAR-10: the table has no separate validation accuracy, so the "
        "search signal and the report are both the mean test accuracy (%) over 3 seeds",
    ),
}


_BUDGET_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*(q|queries|s|sec|seconds)\s*$")


@dataclass(frozen=True)
class Budget:
    """A search budget: a number of queries, or simulated seconds (the sum of ``sim_seconds``).

    Args:
        amount: the number of queries (an integer >= 1) or seconds (> 0).
        unit: ``"queries"`` or ``"seconds"``.

    Example:
        >>> Budget.parse("12000s")
        Budget(amount=12000.0, unit='seconds')
        >>> str(Budget.parse("100q"))
        '100q'
    """

    amount: float
    unit: str = "queries"

    def __post_init__(self) -> None:
        if self.unit not in ("queries", "seconds"):
            raise ConfigError(f"budget unit must be 'queries' or 'seconds', got unit={self.unit!r}")
        if not isinstance(self.amount, (int, float)) or not math.isfinite(self.amount) or self.amount <= 0:
            raise ConfigError(f"a budget must be a positive number, got amount={self.amount!r}")
        if self.unit == "queries" and float(self.amount) != int(self.amount):
            raise ConfigError(f"a query budget must be a whole number, got amount={self.amount!r}")

    @classmethod
    def parse(cls, value: str | Budget) -> Budget:
        """Read ``"100q"`` (100 queries) or ``"12000s"`` (12,000 simulated seconds)."""
        if isinstance(value, Budget):
            return value
        match = _BUDGET_RE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f"cannot read budget {value!r}; write '100q' for 100 queries or '12000s' for 12,000 "
                "simulated seconds"
            )
        amount = float(match.group(1))
        if match.group(2).startswith("q"):
            return cls(amount, "queries")
        return cls(amount, "seconds")

    @property
    def queries(self) -> int | None:
        """The query count of a query budget, else None."""
        return int(self.amount) if self.unit == "queries" else None

    def __str__(self) -> str:
        return f"{int(self.amount)}q" if self.unit == "queries" else f"{self.amount:g}s"
