"""Multi-objective results: hypervolume of a Pareto front, and the front written to the run directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.experiment._rundir import RunDir

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment

__all__ = ["hypervolume", "write_pareto"]


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float] | np.ndarray
) -> float:
    """The volume dominated by ``points`` and bounded by ``reference``, every objective maximised.

    Exact: a sweep in two dimensions, slicing along the last objective above that (fine for the
    fronts of a search: tens of points, a few objectives). Points that do not beat the reference
    in every objective add nothing.

    Args:
        points: ``(n, m)`` objective values, larger is better in each column (negate minimised
            ones, as :meth:`Objective.signed` does).
        reference: ``m`` values, worse than every point that should count.

    Example:
        >>> hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0])
        6.0
    """
    p = np.asarray(points, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    if not np.isfinite(p).all() or not np.isfinite(ref).all():
        raise ConfigError("hypervolume needs finite objective values and reference point")
    p = p[(p > ref).all(axis=1)]
    return float(_hv(p, ref))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(p[:, 0].max() - ref[0])
    if p.shape[1] == 2:
        order = np.argsort(-p[:, 0])
        total, best_y = 0.0, ref[1]
        for x, y in p[order]:
            if y > best_y:
                total += (x - ref[0]) * (y - best_y)
                best_y = y
        return total
    # slice along the last objective: between consecutive levels, the (m-1)-d volume of the points
    # that reach at least the upper level
    levels = np.unique(p[:, -1])
    total, lower = 0.0, ref[-1]
    for level in levels:
        above = p[p[:, -1] >= level]
        total += _hv(above[:, :-1], ref[:-1]) * (level - lower)
        lower = level
    return total


def write_pareto(
    exp: Experiment, run_dir: Path | None = None, *, reference: Sequence[float] | None = None
) -> Path:
    """Write ``pareto.json`` (the front, every feasible result, the hypervolume) and ``pareto.png``.

    The reference point defaults to the worst value of each objective among the feasible completed
    trials (so the hypervolume compares runs only when they share a reference: pass one).

    Returns:
        The JSON file's path.
    """
    target = RunDir(run_dir or exp.run_dir or ".")
    objective = exp.objective
    if len(objective.names) < 2:
        raise ConfigError("a Pareto front needs at least two objectives")
    done = [t for t in exp.trials if t.values is not None and t.feasible]
    front = exp.pareto_front()
    signed = np.array([objective.signed(t.values) for t in done if t.values is not None], dtype=float)
    if reference is None:
        ref = signed.min(axis=0) if len(signed) else np.zeros(len(objective.names))
    else:
        ref = np.asarray(objective.signed(reference), dtype=float)
    front_signed = [objective.signed(t.values) for t in front if t.values is not None]
    payload: dict[str, Any] = {
        "objectives": objective.specs,
        "reference": [float(v) for v in (objective.signed(ref.tolist()) if reference is None else reference)],
        "reference_signed": [float(v) for v in ref],
        "hypervolume": hypervolume(front_signed, ref) if front_signed else 0.0,
        "front": [{"trial": t.number, "values": list(t.values or ())} for t in front],
        "feasible_trials": len(done),
    }
    target.path.mkdir(parents=True, exist_ok=True)
    path = target.pareto_json
    path.write_text(json.dumps(payload, indent=1) + "\n")
    _plot(exp, done, front, target.pareto_png)
    return path


def _plot(exp: Experiment, done: list[Any], front: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = exp.objective.names
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
    xs = [t.values[0] for t in done]
    ys = [t.values[1] for t in done]
    ax.scatter(xs, ys, s=14, color="#9aa7b8", label=f"feasible trials ({len(done)})")
    pts = sorted((t.values[0], t.values[1]) for t in front)
    if pts:
        fx, fy = zip(*pts, strict=True)
        ax.plot(
            fx, fy, "-o", color="#c2410c", ms=5, drawstyle="steps-post", label=f"Pareto front ({len(pts)})"
        )
    for axis, name, direction in zip(("x", "y"), names[:2], exp.objective.directions[:2], strict=True):
        label = f"{name} ({'higher' if direction == 'maximize' else 'lower'} is better)"
        (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(f"{exp.name}: Pareto front" + (" (first two objectives)" if len(names) > 2 else ""))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
