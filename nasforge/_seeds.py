"""Seeds derived from one seed: independent random streams, importable from every layer.

An experiment has one seed; everything random in it (the strategy, each trial's estimator, a
scheduler, the final training) gets a seed derived from it along a path of small integers, so
streams never overlap and a resumed run derives the same ones. The experiment's streams:

- ``derive_seed(seed, 1, n)``: trial ``n``'s estimator (:func:`trial_seed`);
- ``derive_seed(seed, 2)``: a strategy created by name (:func:`strategy_seed`), and
  ``derive_seed(seed, 2, i)`` for worker ``i`` > 0 of a shared database;
- ``derive_seed(seed, 3)``: a Hyperband scheduler created by name, and the final training.

Components derive their own sub-streams from the seed they are given (``derive_seed(seed, 7)``).
"""

from __future__ import annotations

__all__ = ["derive_seed", "strategy_seed", "trial_seed"]

_MASK64 = (1 << 64) - 1


def derive_seed(seed: int, *path: int) -> int:
    """A 31-bit seed derived from ``seed`` and integers ``path`` (independent streams).

    SplitMix64 mixing: cheap (a microsecond, it runs once per trial) and well spread.

    Example:
        >>> from nasforge._seeds import derive_seed
        >>> derive_seed(0, 1, 5) == derive_seed(0, 1, 5) != derive_seed(0, 1, 6)
        True
    """
    x = seed & _MASK64
    for p in path:
        x = (x ^ ((p + 0x9E3779B97F4A7C15) & _MASK64)) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x >> 33


def trial_seed(seed: int, number: int) -> int:
    """The seed handed to the estimator for trial ``number`` of an experiment seeded ``seed``."""
    return derive_seed(seed, 1, number)


def strategy_seed(seed: int, worker_index: int = 0) -> int:
    """The seed of a strategy created by name: the first worker (and a single search) keeps the
    experiment's stream; later workers of a shared database get their own, so they propose
    different architectures."""
    return derive_seed(seed, 2) if worker_index == 0 else derive_seed(seed, 2, worker_index)
