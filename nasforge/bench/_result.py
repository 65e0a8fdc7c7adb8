"""The outcome of a benchmark run: one :class:`RunCurve` per (strategy, seed), aggregated by
:class:`BenchResult` into tables, JSON and plots, with the machine it ran on (:func:`machine_info`)."""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._threads import available_cpus
from nasforge._version import __version__
from nasforge.bench._plot import plot_result
from nasforge.bench._specs import Budget
from nasforge.errors import ConfigError

__all__ = [
    "QUERY_CHECKPOINTS",
    "SECOND_FRACTIONS",
    "BenchResult",
    "RunCurve",
    "format_mean_std",
    "machine_info",
]

QUERY_CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300)
SECOND_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass
class RunCurve:
    """The anytime curve of one (strategy, seed) run; entry ``i`` is the state after query ``i + 1``.

    Attributes:
        strategy: the strategy label as given to :func:`run_benchmark`.
        seed: the experiment seed.
        sim_seconds: cumulative simulated seconds.
        signal: the incumbent's search signal (NaN before the first completed query).
        report: the incumbent's reported value (NaN likewise).
        wall_seconds: wall-clock time of the whole run (experiment creation included).
    """

    strategy: str
    seed: int
    sim_seconds: list[float] = field(default_factory=list)
    signal: list[float] = field(default_factory=list)
    report: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def queries(self) -> int:
        """Number of queries made."""
        return len(self.signal)

    def value_at(self, point: float, axis: str = "queries") -> float:
        """The reported value after ``point`` queries (or simulated seconds).

        A run that stopped earlier (budget or strategy exhausted) keeps its final pick; before the
        first query (or the first completed one) the value is NaN.
        """
        return float(self.values_along([point], axis)[0])

    def values_along(self, points: Sequence[float] | np.ndarray, axis: str = "queries") -> np.ndarray:
        """:meth:`value_at` for many points at once."""
        pts = np.asarray(points, dtype=float)
        if axis == "queries":
            n = np.minimum(np.floor(pts), self.queries).astype(int)
        elif axis == "seconds":
            n = np.searchsorted(np.asarray(self.sim_seconds, dtype=float), pts, side="right")
        else:
            raise ConfigError(f"axis must be 'queries' or 'seconds', got {axis!r}")
        report = np.asarray([math.nan, *self.report], dtype=float)
        return report[np.maximum(n, 0)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "wall_seconds": self.wall_seconds,
            "sim_seconds": self.sim_seconds,
            "signal": [_json_float(v) for v in self.signal],
            "report": [_json_float(v) for v in self.report],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunCurve:
        return cls(
            strategy=str(data["strategy"]),
            seed=int(data["seed"]),
            sim_seconds=[float(v) for v in data["sim_seconds"]],
            signal=[math.nan if v is None else float(v) for v in data["signal"]],
            report=[math.nan if v is None else float(v) for v in data["report"]],
            wall_seconds=float(data.get("wall_seconds", 0.0)),
        )


def _json_float(v: float) -> float | None:
    return v if math.isfinite(v) else None


def machine_info() -> dict[str, Any]:
    """Machine, Python, library versions and the date, for benchmark reports."""
    cores = available_cpus()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu}, {cores} cores available",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nasforge": __version__,
    }


@dataclass
class BenchResult:
    """All curves of a benchmark run, with aggregation, a markdown table, JSON and a plot.

    Attributes:
        benchmark: the benchmark name.
        budget: the budget each run had.
        strategies: strategy labels, in the order given.
        seeds: the seeds.
        signal: the metric searched on; report: the metric reported for the incumbent.
        optimum: best possible reported value, or None.
        runs: one :class:`RunCurve` per (strategy, seed), by strategy then seed.
        checkpoints: aggregation points (None: the defaults for the budget).
        meta: machine, date, versions, workers, total wall time, strategy options.
    """

    benchmark: str
    budget: Budget
    strategies: list[str]
    seeds: list[int]
    signal: str
    report: str
    optimum: float | None
    runs: list[RunCurve]
    checkpoints: list[float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def axis(self) -> str:
        """``"queries"`` or ``"seconds"``: the unit of the budget and the checkpoints."""
        return self.budget.unit

    def default_checkpoints(self) -> list[float]:
        """The checkpoints used when none were given."""
        if self.budget.unit == "queries":
            n = int(self.budget.amount)
            return [float(c) for c in QUERY_CHECKPOINTS if c < n] + [float(n)]
        return [self.budget.amount * f for f in SECOND_FRACTIONS]

    def runs_of(self, strategy: str) -> list[RunCurve]:
        """The runs of one strategy, by seed."""
        return [r for r in self.runs if r.strategy == strategy]

    def values_at(self, strategy: str, point: float, axis: str | None = None) -> np.ndarray:
        """The reported value of every run of ``strategy`` at ``point`` (NaN where undefined)."""
        return np.asarray(
            [r.values_along([point], axis or self.axis)[0] for r in self.runs_of(strategy)], dtype=float
        )

    def summary(self, checkpoints: Sequence[float] | None = None) -> list[dict[str, Any]]:
        """Per strategy: mean, std (numpy's population std) and run count at each checkpoint.

        Returns:
            rows ``{"strategy", "checkpoints": [{"at", "mean", "std", "n"}...], "queries_mean",
            "queries_per_second"}``; NaN values (no completed query yet) are left out of mean/std.
        """
        points = list(checkpoints or self.checkpoints or self.default_checkpoints())
        rows = []
        for strategy in self.strategies:
            runs = self.runs_of(strategy)
            cells = []
            for p in points:
                vals = self.values_at(strategy, p)
                ok = vals[np.isfinite(vals)]
                cells.append(
                    {
                        "at": p,
                        "mean": float(ok.mean()) if ok.size else math.nan,
                        "std": float(ok.std()) if ok.size else math.nan,
                        "n": int(ok.size),
                    }
                )
            queries = sum(r.queries for r in runs)
            wall = sum(r.wall_seconds for r in runs)
            rows.append(
                {
                    "strategy": strategy,
                    "checkpoints": cells,
                    "queries_mean": queries / len(runs) if runs else math.nan,
                    "queries_per_second": queries / wall if wall > 0 else math.nan,
                }
            )
        return rows

    def checkpoint_label(self, point: float) -> str:
        """``"100 q"`` or ``"12000 s"``."""
        return f"{point:g} q" if self.axis == "queries" else f"{point:g} s"

    def table(self, checkpoints: Sequence[float] | None = None) -> str:
        """A markdown table: strategy, ``mean ± std`` of the reported value at each checkpoint,
        mean queries per run and queries per second through the API."""
        rows = self.summary(checkpoints)
        points = [c["at"] for c in rows[0]["checkpoints"]] if rows else []
        head = [
            "strategy",
            *(f"{self.report} @ {self.checkpoint_label(p)}" for p in points),
            "queries",
            "q/s",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for row in rows:
            cells = [format_mean_std(c["mean"], c["std"]) for c in row["checkpoints"]]
            lines.append(
                f"| {row['strategy']} | "
                + " | ".join(cells)
                + f" | {row['queries_mean']:.1f} | {row['queries_per_second']:,.0f} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN written as null)."""

        def clean(obj: Any) -> Any:
            if isinstance(obj, float):
                return _json_float(obj)
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [clean(v) for v in obj]
            return obj

        return {
            "benchmark": self.benchmark,
            "budget": str(self.budget),
            "strategies": self.strategies,
            "seeds": self.seeds,
            "signal": self.signal,
            "report": self.report,
            "optimum": self.optimum,
            "checkpoints": self.checkpoints,
            "meta": clean(self.meta),
            "summary": clean(self.summary()),
            "runs": [r.to_dict() for r in self.runs],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":"), default=str))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> BenchResult:
        """Read a file written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                benchmark=data["benchmark"],
                budget=Budget.parse(data["budget"]),
                strategies=list(data["strategies"]),
                seeds=[int(s) for s in data["seeds"]],
                signal=data["signal"],
                report=data["report"],
                optimum=data.get("optimum"),
                runs=[RunCurve.from_dict(r) for r in data["runs"]],
                checkpoints=data.get("checkpoints"),
                meta=dict(data.get("meta") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a nasforge benchmark result: {exc}") from None

    def plot(self, path: str | Path, *, axis: str | None = None, regret: bool = False) -> Path:
        """Save a PNG of mean ± std of the reported value per strategy (see :func:`plot_result`)."""
        return plot_result(self, path, axis=axis, regret=regret)


def format_mean_std(mean: float, std: float) -> str:
    """``93.70 ± 0.36`` (percentages) or ``0.9243 ± 0.0031`` (fractions); ``-`` if undefined."""
    if not math.isfinite(mean):
        return "-"
    digits = 4 if abs(mean) <= 1.5 else 2
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
