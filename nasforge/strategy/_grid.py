"""Exhaustive grid search for small spaces."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from nasforge.errors import ConfigError
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy

__all__ = ["GridSearch"]


class GridSearch(Strategy):
    """Every valid architecture once, in the space's fixed grid order; then ``ask`` returns None.

    Meant for small spaces; on a large one it simply walks the first points of the grid.

    Args:
        seed: unused (the order is fixed); accepted for a uniform interface.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._pos = 0
        self._iter: Iterator[Architecture] | None = None

    def on_setup(self) -> None:
        self._iter = self.space.grid()
        self._pos = 0

    def ask(self) -> Architecture | None:
        if self._iter is None:
            self.on_setup()
        assert self._iter is not None
        arch = next(self._iter, None)
        if arch is not None:
            self._pos += 1
        return arch

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "position": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        pos = state.get("position")
        if not isinstance(pos, int) or pos < 0:
            raise ConfigError(f"cannot restore GridSearch state: bad position {pos!r}")
        self._iter = itertools.islice(self.space.grid(), pos, None)
        self._pos = pos
