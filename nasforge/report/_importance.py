"""Which architecture parameters the primary objective depends on: a random forest's view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.objective import Objective
from nasforge.space import SearchSpace
from nasforge.trial import Trial

__all__ = ["MIN_TRIALS", "Importance", "param_importance"]

#: below this many completed trials a forest's importances are noise; the report says so instead
MIN_TRIALS = 8


@dataclass(frozen=True)
class Importance:
    """Parameter importances for the primary objective.

    Attributes:
        scores: ``(parameter, importance)`` pairs, largest first, summing to 1 (parameters that
            never varied are left out).
        trials: completed trials the forest was fitted on.
        constant: parameters that took a single value (or were inactive) in every such trial.
        note: why there are no scores (too few trials, one value only), else None.
    """

    scores: tuple[tuple[str, float], ...]
    trials: int
    constant: tuple[str, ...] = ()
    note: str | None = None


def param_importance(
    trials: Sequence[Trial], space: SearchSpace, objective: Objective, *, seed: int = 0
) -> Importance:
    """Impurity importance of a random forest fitted on the parameters of completed trials.

    Architectures are one-hot encoded by :meth:`SearchSpace.encode` (one column per value of each
    dimension; an inactive parameter has none set, so conditional parameters need no imputation);
    a parameter's importance is the sum over its columns. Infeasible completed trials count: the
    forest models the objective, not the constraints.

    Args:
        trials: any trials; those without objective values are skipped.
        space: the space the architectures belong to.
        objective: the first objective is modelled.
        seed: the forest's seed.
    """
    done = [t for t in trials if t.values is not None]
    if len(done) < MIN_TRIALS:
        return Importance(
            (),
            len(done),
            note=f"{len(done)} completed trial{'s' if len(done) != 1 else ''}: parameter importance "
            f"needs at least {MIN_TRIALS}",
        )
    y = np.array([objective.signed(t.values or ())[0] for t in done], dtype=float)
    if np.ptp(y) == 0:
        same = f"all {len(done)} completed trials have the same objective value"
        return Importance((), len(done), note=same)
    x = np.stack([space.encode(t.architecture) for t in done])
    dims = space.dimensions()
    # a block's last column says "inactive"; it is left out, so that a parameter's share comes from
    # its values and not from whether it exists (that is the share of what switches it on: depth)
    blocks: list[tuple[str, slice]] = []
    start = 0
    for name, dim in dims.items():
        blocks.append((name, slice(start, start + dim.size)))
        start += dim.size + 1
    keep = np.concatenate([np.arange(cols.start, cols.stop) for _, cols in blocks])
    varied = [(name, cols) for name, cols in blocks if (x[:, cols].std(axis=0) > 0).any()]
    constant = tuple(name for name, cols in blocks if not (x[:, cols].std(axis=0) > 0).any())
    if not varied:
        return Importance((), len(done), constant, note="every parameter took a single value")
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(x[:, keep], y)
    raw = np.zeros(x.shape[1])
    raw[keep] = forest.feature_importances_
    scores = [(name, float(raw[cols].sum())) for name, cols in varied]
    total = sum(s for _, s in scores) or 1.0
    ranked = sorted(((name, s / total) for name, s in scores), key=lambda p: -p[1])
    return Importance(tuple(ranked), len(done), constant)
