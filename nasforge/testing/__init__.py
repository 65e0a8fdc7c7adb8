"""Reusable test suites and toy problems (for nasforge's tests and for third-party components)."""

from nasforge.testing._estimator import EstimatorConformance
from nasforge.testing._space import SpaceConformance
from nasforge.testing._storage import StorageConformance
from nasforge.testing._strategy import StrategyConformance
from nasforge.testing._toy import (
    AdditiveEstimator,
    NumericSumRanker,
    ToyEstimator,
    additive_space,
    band_image,
    best_on_additive,
    make_image_folder,
    run_additive,
    toy_space,
)

__all__ = [
    "AdditiveEstimator",
    "EstimatorConformance",
    "NumericSumRanker",
    "SpaceConformance",
    "StorageConformance",
    "StrategyConformance",
    "ToyEstimator",
    "additive_space",
    "band_image",
    "best_on_additive",
    "make_image_folder",
    "run_additive",
    "toy_space",
]
