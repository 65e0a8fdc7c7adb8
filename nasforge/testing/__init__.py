"""Reusable test suites and toy problems (for nasforge's tests and for third-party components)."""

from nasforge.testing._strategy import StrategyConformance
from nasforge.testing._toy import (
    AdditiveEstimator,
    NumericSumRanker,
    ToyEstimator,
    additive_space,
    best_on_additive,
    run_additive,
    toy_space,
)

__all__ = [
    "AdditiveEstimator",
    "NumericSumRanker",
    "StrategyConformance",
    "ToyEstimator",
    "additive_space",
    "best_on_additive",
    "run_additive",
    "toy_space",
]
