"""PNG plots of benchmark curves (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from nasforge.bench._result import BenchResult

__all__ = ["curve_band", "plot_result"]

_INSTALL_HINT = "benchmark plots need matplotlib: pip install matplotlib (a nasforge dependency)"


def _grid(result: BenchResult, axis: str) -> np.ndarray:
    if axis == "queries":
        longest = max((r.queries for r in result.runs), default=0)
        return np.arange(1, max(longest, 1) + 1, dtype=float)
    if result.budget.unit == "seconds":
        end = result.budget.amount
    else:
        end = max((r.sim_seconds[-1] for r in result.runs if r.sim_seconds), default=1.0)
    return np.linspace(end / 200, end, 200)


def curve_band(result: BenchResult, strategy: str, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, mean, std)`` of the reported value of ``strategy`` along ``axis`` (NaN-aware)."""
    x = _grid(result, axis)
    runs = result.runs_of(strategy)
    values = np.full((len(runs), len(x)), np.nan)
    for i, run in enumerate(runs):
        values[i] = run.values_along(x, axis)
    counts = np.isfinite(values).sum(axis=0)
    with np.errstate(invalid="ignore"):
        total = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
        mean = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
        sq = np.where(np.isfinite(values), (values - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(counts > 0, np.sqrt(sq / np.maximum(counts, 1)), np.nan)
    return x, mean, std


def plot_result(
    result: BenchResult, path: str | Path, *, axis: str | None = None, regret: bool = False
) -> Path:
    """Save mean ± std of the reported value per strategy against queries or simulated seconds.

    Args:
        result: the benchmark result.
        path: the PNG file to write (parent folders created).
        axis: ``"queries"`` or ``"seconds"``; default: the unit of the budget.
        regret: add a second panel with the regret (optimum minus mean value) on a log scale; the
            optimum is the benchmark's known best reported value, or else the best value any run
            reached.

    Returns:
        the path written.
    """
    axis = axis or result.axis
    if axis not in ("queries", "seconds"):
        raise ConfigError(f"plot axis must be 'queries' or 'seconds', got {axis!r}")
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels = 2 if regret else 1
    # a bare Figure renders with Agg and leaves pyplot's global state (and backend) alone
    fig = Figure(figsize=(6.4 * panels, 4.4))
    axes = fig.subplots(1, panels, squeeze=False)
    ax = axes[0][0]
    optimum = result.optimum
    if optimum is None:
        finals = [v for r in result.runs for v in r.report[-1:] if np.isfinite(v)]
        optimum = max(finals) if finals else None
    xlabel = "queries" if axis == "queries" else "simulated seconds"
    lows, highs = [], []
    for strategy in result.strategies:
        x, mean, std = curve_band(result, strategy, axis)
        (line,) = ax.plot(x, mean, label=strategy, linewidth=1.5)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.18, linewidth=0)
        tail = slice(len(x) // 10, None)  # the first queries sit far below; zoom on the rest
        if np.isfinite(mean[tail]).any():
            lows.append(np.nanmin((mean - std)[tail]))
            highs.append(np.nanmax((mean + std)[tail]))
        if regret and optimum is not None:
            gap = np.clip(optimum - mean, 1e-4, None)
            axes[0][1].plot(x, gap, label=strategy, color=line.get_color(), linewidth=1.5)
    if lows:
        top = max(max(highs), optimum if optimum is not None else -np.inf)
        margin = 0.05 * max(top - min(lows), 1e-6)
        ax.set_ylim(min(lows) - margin, top + margin)
        if result.optimum is not None:
            ax.axhline(result.optimum, color="grey", linestyle=":", linewidth=1, label="optimum")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{result.report} of the incumbent (mean ± std)")
    ax.set_title(f"{result.benchmark}: {len(result.seeds)} seeds, budget {result.budget}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if regret:
        rax = axes[0][1]
        rax.set_yscale("log")
        rax.set_xlabel(xlabel)
        rax.set_ylabel(f"regret: {optimum:.4g} - mean {result.report}" if optimum is not None else "regret")
        rax.grid(alpha=0.3, which="both")
        rax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
