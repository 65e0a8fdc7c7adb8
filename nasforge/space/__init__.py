"""Search spaces: dimensions, SearchSpace, Architecture, constraints and built-in spaces."""

from nasforge.space._base import Architecture, Constraint, SearchSpace
from nasforge.space._chain import ChainCNN
from nasforge.space._constraints import MaxParams, Predicate
from nasforge.space._detector import DetectorSpace
from nasforge.space._dimensions import Choice, Dimension, IntRange
from nasforge.space._load import load_space, space_from_config
from nasforge.space._mbconv import MBConvSpace, compound_scale
from nasforge.space._nb201 import NB201Space

__all__ = [
    "Architecture",
    "ChainCNN",
    "Choice",
    "Constraint",
    "DetectorSpace",
    "Dimension",
    "IntRange",
    "MBConvSpace",
    "MaxParams",
    "NB201Space",
    "Predicate",
    "SearchSpace",
    "compound_scale",
    "load_space",
    "space_from_config",
]
