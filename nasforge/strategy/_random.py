"""Random search."""

from __future__ import annotations

from nasforge.space import Architecture
from nasforge.strategy._base import Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Uniform random sampling of the space (constraints respected by rejection).

    Args:
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.RandomSearch(seed=0)
    """

    def ask(self) -> Architecture | None:
        return self.space.sample(self.rng)
