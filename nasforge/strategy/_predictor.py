"""The predictor options the model-guided strategies share (BANANAS, guided local search, the warm start).

Their own score model is :class:`~nasforge.estimate._mlp.MLPEnsemble` (``predictor="mlp"``); any other
name is a :func:`nasforge.estimate.make_predictor` surrogate, checked and fitted here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError
from nasforge.estimate import PREDICTORS, Predictor, make_predictor

if TYPE_CHECKING:
    from nasforge.space import Architecture

__all__ = ["check_predictor", "fit_predictor", "predict_dist"]


def check_predictor(name: Any, options: Any) -> tuple[str, dict[str, Any]]:
    """Validate a strategy's ``predictor`` / ``predictor_options`` pair; returns them normalised.

    ``"mlp"`` is the strategies' own MLP ensemble; any other name is a
    :func:`nasforge.estimate.make_predictor` surrogate, checked by creating it once.
    """
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"predictor_options must be a mapping, got {options!r}")
    opts = dict(options or {})
    if name == "mlp":
        if opts:
            raise ConfigError(
                "predictor_options apply to the gbm, rf and gp predictors; the mlp ensemble takes "
                "n_models, hidden and epochs"
            )
        return name, opts
    if not isinstance(name, str) or name not in PREDICTORS or name == "mean":
        valid = ", ".join(p for p in PREDICTORS if p != "mean")
        raise ConfigError(f"unknown predictor {name!r}; valid predictors: {valid}")
    if "seed" in opts:
        raise ConfigError("predictor_options cannot set the seed: it comes from the strategy's seed")
    make_predictor(name, **opts)  # unknown options fail now, not at the first fit
    return name, opts


def fit_predictor(
    name: str, options: Mapping[str, Any], archs: Sequence[Architecture], y: np.ndarray, seed: int
) -> Predictor:
    """A :func:`~nasforge.estimate.make_predictor` surrogate fitted on ``archs`` and ``y``."""
    return make_predictor(name, seed=int(seed) % 2**32, **options).fit(archs, y)


def predict_dist(model: Predictor, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``model``'s prediction (std 0 when it has no uncertainty)."""
    mean, std = model.predict_dist(archs)
    return mean, np.zeros_like(mean) if std is None else std
