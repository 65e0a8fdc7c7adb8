"""Search strategies (ask-and-tell)."""

from nasforge.strategy._bananas import Bananas
from nasforge.strategy._base import Strategy
from nasforge.strategy._differentiable import DARTS, GDAS, DifferentiableSearch
from nasforge.strategy._evolution import RegularizedEvolution
from nasforge.strategy._grid import GridSearch
from nasforge.strategy._local import GuidedLocalSearch, LocalSearch
from nasforge.strategy._multifidelity import BOHB, HyperbandSearch, SuccessiveHalvingSearch
from nasforge.strategy._oneshot import SPOS
from nasforge.strategy._optuna import TPE, OptunaStrategy
from nasforge.strategy._random import RandomSearch
from nasforge.strategy._reinforce import Reinforce
from nasforge.strategy._schedulers import (
    Hyperband,
    LearningCurveStopping,
    MedianStopping,
    Scheduler,
    SuccessiveHalving,
)
from nasforge.strategy._warmstart import ProxyWarmStart

__all__ = [
    "BOHB",
    "DARTS",
    "GDAS",
    "SPOS",
    "TPE",
    "Bananas",
    "DifferentiableSearch",
    "GridSearch",
    "GuidedLocalSearch",
    "Hyperband",
    "HyperbandSearch",
    "LearningCurveStopping",
    "LocalSearch",
    "MedianStopping",
    "OptunaStrategy",
    "ProxyWarmStart",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Scheduler",
    "Strategy",
    "SuccessiveHalving",
    "SuccessiveHalvingSearch",
]
