"""PNG plots of a run: the search trajectory and parameter importance (matplotlib, imported lazily)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.objective import Objective
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nasforge.report._importance import Importance

__all__ = ["figure", "finishing_order", "plot_importance", "plot_trajectory", "save"]

_INSTALL_HINT = "the HTML report needs matplotlib: pip install matplotlib (a nasforge dependency)"
COMPLETE_COLOR = "#2563eb"
BEST_COLOR = "#c2410c"
PRUNED_COLOR = "#d97706"
FAIL_COLOR = "#dc2626"
MUTED_COLOR = "#9aa7b8"


def figure(width: float, height: float) -> Figure:
    """A bare Figure: it renders with Agg and leaves pyplot's global state (and backend) alone."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return Figure(figsize=(width, height))


def save(fig: Figure, path: Path, dpi: int = 100) -> Path:
    fig.savefig(path, dpi=dpi)
    return path


def finishing_order(trials: Sequence[Trial]) -> list[Trial]:
    """Finished trials in the order they finished (by number where a time is missing)."""
    done = [t for t in trials if t.state.is_finished]
    return sorted(done, key=lambda t: (t.finished if t.finished is not None else math.inf, t.number))


def _reached(trial: Trial, metric: str) -> float | None:
    """The primary metric a stopped trial reached: its recorded metric, else its last report."""
    value = trial.metrics.get(metric)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if trial.intermediate:
        last = trial.intermediate[max(trial.intermediate)]
        return float(last) if math.isfinite(last) else None
    return None


def plot_trajectory(trials: Sequence[Trial], objective: Objective, path: Path, title: str) -> Path | None:
    """Primary objective per trial in finishing order, with the best-so-far line.

    Completed trials are dots (hollow when infeasible), pruned trials crosses at the value they
    reached, failed trials triangles on the bottom edge. Returns None when no trial has finished.
    """
    order = finishing_order(trials)
    if not order:
        return None
    name, direction = objective.names[0], objective.directions[0]
    better = max if direction == "maximize" else min
    fig = figure(8.0, 4.2)
    ax = fig.subplots()
    groups: dict[str, tuple[list[int], list[float]]] = {
        "feasible": ([], []),
        "infeasible": ([], []),
        "pruned": ([], []),
    }
    failed: list[int] = []
    pruned_unplaced: list[int] = []
    best_x: list[int] = []
    best_y: list[float] = []
    best: float | None = None
    for i, t in enumerate(order, start=1):
        if t.state is TrialState.COMPLETE and t.values is not None:
            value = t.values[0]
            groups["feasible" if t.feasible else "infeasible"][0].append(i)
            groups["feasible" if t.feasible else "infeasible"][1].append(value)
            if t.feasible:
                best = value if best is None else better(best, value)
        elif t.state is TrialState.PRUNED:
            reached = _reached(t, name)
            if reached is None:
                pruned_unplaced.append(i)
            else:
                groups["pruned"][0].append(i)
                groups["pruned"][1].append(reached)
        else:
            failed.append(i)
        if best is not None:
            best_x.append(i)
            best_y.append(best)
    xs, ys = groups["feasible"]
    ax.scatter(xs, ys, s=18, color=COMPLETE_COLOR, label=f"completed ({len(xs)})", zorder=3)
    xs, ys = groups["infeasible"]
    if xs:
        ax.scatter(
            xs, ys, s=18, facecolors="none", edgecolors=MUTED_COLOR, label=f"infeasible ({len(xs)})", zorder=3
        )
    xs, ys = groups["pruned"]
    if xs:
        ax.scatter(xs, ys, s=22, marker="x", color=PRUNED_COLOR, label=f"pruned ({len(xs)})", zorder=3)
    if best_x:
        ax.step(best_x, best_y, where="post", color=BEST_COLOR, linewidth=1.6, label="best so far", zorder=2)
    bottom = ax.get_xaxis_transform()  # x in data, y in axes fraction: marks along the bottom edge
    for xs, marker, color, label in (
        (failed, "v", FAIL_COLOR, "failed"),
        (pruned_unplaced, "x", PRUNED_COLOR, "pruned, no value"),
    ):
        if xs:
            ax.scatter(
                xs,
                [0.02] * len(xs),
                transform=bottom,
                marker=marker,
                s=24,
                color=color,
                label=f"{label} ({len(xs)})",
                clip_on=False,
                zorder=4,
            )
    ax.set_xlim(0.3, len(order) + 0.7)
    ax.set_xlabel("trial, in finishing order")
    ax.set_ylabel(f"{name} ({'higher' if direction == 'maximize' else 'lower'} is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def plot_importance(importance: Importance, path: Path, metric: str, *, most: int = 15) -> Path | None:
    """A horizontal bar per parameter (the ``most`` largest), or None without scores."""
    scores = list(importance.scores[:most])
    if not scores:
        return None
    names = [n for n, _ in reversed(scores)]
    values = [v for _, v in reversed(scores)]
    fig = figure(7.0, 1.2 + 0.28 * len(scores))
    ax = fig.subplots()
    ax.barh(names, values, color=COMPLETE_COLOR)
    ax.set_xlabel(f"share of the forest's impurity decrease for {metric}")
    shown = f"top {len(scores)} of {len(importance.scores)}" if len(importance.scores) > most else "all"
    ax.set_title(f"Parameter importance ({shown} varied parameters, {importance.trials} trials)")
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save(fig, path)
