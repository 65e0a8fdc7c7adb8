"""Performance estimation: estimators, the trial context, training, zero-cost proxies, predictors.

The zero-cost proxies (:func:`compute_proxies`, :class:`ZeroCostEstimator`, ...) import torch;
they are resolved on first access so that ``import nasforge`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasforge.estimate._base import Estimator, TrialContext
from nasforge.estimate._ensemble import (
    AGGREGATIONS,
    ENSEMBLES,
    ProxyEnsemble,
    aggregate,
    log_rank_vote,
    parse_ensemble,
    rank_vote,
    ranks,
)
from nasforge.estimate._final import FinalRun, TrainedModel, fit_final, train_final
from nasforge.estimate._predictors import (
    PREDICTORS,
    Predictor,
    PredictorEstimator,
    encode_architectures,
    make_predictor,
)
from nasforge.estimate._supernet import SupernetEstimator
from nasforge.estimate._train import TrainEstimator

if TYPE_CHECKING:
    from nasforge.estimate._detection import DetectionTrainEstimator, TrainedDetector, train_detector
    from nasforge.estimate._proxies import (
        DEFAULT_PROXIES,
        PROXIES,
        Proxy,
        compute_proxies,
    )
    from nasforge.estimate._screening import ProxyScorer
    from nasforge.estimate._tables import NB201Table
    from nasforge.estimate._zero_cost import ZeroCostEstimator

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_PROXIES",
    "ENSEMBLES",
    "PREDICTORS",
    "PROXIES",
    "DetectionTrainEstimator",
    "Estimator",
    "FinalRun",
    "NB201Table",
    "Predictor",
    "PredictorEstimator",
    "Proxy",
    "ProxyEnsemble",
    "ProxyScorer",
    "SupernetEstimator",
    "TrainEstimator",
    "TrainedDetector",
    "TrainedModel",
    "TrialContext",
    "ZeroCostEstimator",
    "aggregate",
    "compute_proxies",
    "encode_architectures",
    "fit_final",
    "log_rank_vote",
    "make_predictor",
    "parse_ensemble",
    "rank_vote",
    "ranks",
    "train_detector",
    "train_final",
]

_LAZY = {
    "ProxyScorer": "nasforge.estimate._screening",
    "DEFAULT_PROXIES": "nasforge.estimate._proxies",
    "PROXIES": "nasforge.estimate._proxies",
    "Proxy": "nasforge.estimate._proxies",
    "ZeroCostEstimator": "nasforge.estimate._zero_cost",
    "compute_proxies": "nasforge.estimate._proxies",
    "NB201Table": "nasforge.estimate._tables",
    "DetectionTrainEstimator": "nasforge.estimate._detection",
    "TrainedDetector": "nasforge.estimate._detection",
    "train_detector": "nasforge.estimate._detection",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasforge.estimate' has no attribute {name!r}")
