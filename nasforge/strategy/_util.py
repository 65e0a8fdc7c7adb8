"""Helpers the strategies share: unseen sampling and JSON-safe scores."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection

import numpy as np

from nasforge.errors import SpaceError
from nasforge.space import Architecture, SearchSpace

__all__ = ["sample_unseen", "score_from_json", "score_to_json"]

_GRID_SCAN_LIMIT = 100_000


def sample_unseen(
    space: SearchSpace, rng: np.random.Generator, seen: Collection[str], *, tries: int = 100
) -> Architecture | None:
    """A random architecture whose key is not in ``seen``, or None if none could be found.

    Tries ``tries`` random samples first; if all were seen (a small or nearly exhausted space),
    walks the grid (at most its first 100,000 points) for the first unseen one.

    Args:
        space: the search space.
        rng: the caller's generator (the only randomness used).
        seen: keys to avoid.
        tries: random samples before falling back to the grid walk.
    """
    for _ in range(tries):
        try:
            arch = space.sample(rng)
        except SpaceError:  # constraints reject nearly everything: the walk may still find one
            break
        if arch.key not in seen:
            return arch
    for arch in itertools.islice(space.grid(), _GRID_SCAN_LIMIT):
        if arch.key not in seen:
            return arch
    return None


def score_to_json(score: float) -> float | None:
    """A score as JSON (``-inf``, the score of failed or infeasible trials, becomes None)."""
    return score if math.isfinite(score) else None


def score_from_json(value: float | None) -> float:
    """Inverse of :func:`score_to_json`."""
    return -math.inf if value is None else float(value)
