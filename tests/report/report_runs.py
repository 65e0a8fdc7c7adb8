"""Estimators and spaces for the report tests' runs (see conftest.py).

The estimators score architectures from their parameters (no training), so a run of 24 trials
takes seconds, but the runs are real: a strategy asks, trials are stored in Optuna's database, a
scheduler prunes, and estimators fail the way real ones do.
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import TrialFailed
from nasforge.estimate import Estimator, TrialContext
from nasforge.space import Architecture, ChainCNN, Choice, IntRange, SearchSpace

#: an error message with markup in it: the report must show it as text
MARKUP_ERROR = 'shape <b>mismatch</b> & "quotes" <script>alert(1)</script>'


class ChainScore(Estimator):
    """An accuracy-like score of a chain CNN from its parameters, reported over three "epochs".

    Depth-4 architectures whose first layer is average pooling crash (a RuntimeError with markup
    in its message); depth-2 networks starting with max pooling fail with a TrialFailed reason.
    """

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        p = arch.params
        if p["layer0.op"] == "avgpool" and p["depth"] == 4:
            raise RuntimeError(MARKUP_ERROR)
        if p["layer0.op"] == "maxpool" and p["depth"] == 2:
            raise TrialFailed("pooling first on a shallow network")
        filters = sum(v for k, v in p.items() if k.endswith(".filters"))
        acc = 0.80 + 0.03 * p["depth"] + 0.0005 * filters + 0.02 * (p["layer0.op"] == "conv")
        for step in (1, 2, 3):
            ctx.report(step, acc * step / 3, {"epochs": step})
        return {"val_accuracy": acc, "params": 90 * filters + 10, "train_seconds": 0.5, "epochs": 3}


class TwoGoals(Estimator):
    """``score`` (maximise) and ``cost`` (minimise) of a plain parameter space; ``a`` decides most."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        p = arch.params
        return {"score": 3.0 * p["a"] + 0.5 * (p["b"] == "z") + 0.1 * p["c"], "cost": float(p["a"] + p["c"])}


def plain_space() -> SearchSpace:
    """A space without a ``describe`` or diagram: the report falls back to parameter tables."""
    return SearchSpace({"a": IntRange(0, 6), "b": Choice(["x", "y", "z"]), "c": IntRange(0, 3)})


def chain_space() -> ChainCNN:
    return ChainCNN(depth=(2, 4), layer={"filters": [8, 16]}, input_shape=(1, 8, 8), num_classes=10)
