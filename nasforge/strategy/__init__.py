"""Search strategies (ask-and-tell)."""

from nasforge.strategy._base import Strategy
from nasforge.strategy._evolution import RegularizedEvolution
from nasforge.strategy._grid import GridSearch
from nasforge.strategy._random import RandomSearch

__all__ = ["GridSearch", "RandomSearch", "RegularizedEvolution", "Strategy"]
