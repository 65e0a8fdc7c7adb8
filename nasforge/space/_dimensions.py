"""Searchable variables: :class:`Choice` and :class:`IntRange`.

A dimension is an immutable value object: it validates in ``__init__``, samples with an injected
``numpy.random.Generator``, lists its values (every dimension is finite, so grids and one-hot
encodings are possible) and round-trips through JSON with ``to_dict`` / ``dimension_from_dict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import SpaceError

__all__ = ["Choice", "Dimension", "IntRange", "as_dimension", "dimension_from_dict"]

_SCALARS = (str, int, float, bool, type(None))


def _same(a: Any, b: Any) -> bool:
    # 1 == True in Python; a choice between them must still tell them apart.
    return type(a) is type(b) and a == b


class Dimension(ABC):
    """One searchable variable with a finite, ordered set of values."""

    @abstractmethod
    def values(self) -> list[Any]:
        """All values, in a fixed order (the order of grids and encodings)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description; ``dimension_from_dict`` inverts it."""

    @property
    def size(self) -> int:
        """Number of values."""
        return len(self.values())

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the values (type-exact: ``True`` is not ``1``)."""
        return any(_same(value, v) for v in self.values())

    def index(self, value: Any) -> int:
        """Position of ``value`` in :meth:`values`; raises SpaceError if absent."""
        for i, v in enumerate(self.values()):
            if _same(value, v):
                return i
        raise SpaceError(f"{value!r} is not one of {self.values()}")

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random value."""
        vals = self.values()
        return vals[int(rng.integers(len(vals)))]

    def mutate(self, value: Any, rng: np.random.Generator) -> Any:
        """A uniformly random value other than ``value`` (``value`` itself if there is no other)."""
        others = [v for v in self.values() if not _same(v, value)]
        if not others:
            return value
        return others[int(rng.integers(len(others)))]

    def neighbours(self, value: Any) -> list[Any]:
        """Values one step away from ``value`` (all others for an unordered choice)."""
        return [v for v in self.values() if not _same(v, value)]

    def default(self) -> Any:
        """The value used where a deterministic fill-in is needed (the first one)."""
        return self.values()[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dimension) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))


class Choice(Dimension):
    """A categorical choice among JSON scalars (str, int, float, bool, None).

    Args:
        values: the options, at least one, no duplicates.

    Example:
        >>> Choice([16, 32, 64]).contains(32)
        True
    """

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise SpaceError(f"Choice takes a list of values, got {values!r}")
        vals = list(values)
        if not vals:
            raise SpaceError("Choice needs at least one value, got an empty list")
        for v in vals:
            if not isinstance(v, _SCALARS):
                raise SpaceError(
                    f"Choice values must be str, int, float, bool or None, got {v!r} ({type(v).__name__})"
                )
        for i, v in enumerate(vals):
            if any(_same(v, w) for w in vals[:i]):
                raise SpaceError(f"Choice values must be distinct, {v!r} appears twice in {vals}")
        self._values = vals

    def values(self) -> list[Any]:
        return list(self._values)

    @property
    def size(self) -> int:
        return len(self._values)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self._values)}

    def __repr__(self) -> str:
        return f"Choice({self._values!r})"


class IntRange(Dimension):
    """Integers ``low, low + step, ..., high`` (both ends included).

    Args:
        low: smallest value.
        high: largest value, ``>= low``.
        step: spacing, ``>= 1``; ``high - low`` must be a multiple of it.

    Example:
        >>> IntRange(2, 6).values()
        [2, 3, 4, 5, 6]
    """

    def __init__(self, low: int, high: int, step: int = 1) -> None:
        for label, v in (("low", low), ("high", high), ("step", step)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SpaceError(f"IntRange {label} must be an integer, got {label}={v!r}")
        if high < low:
            raise SpaceError(f"IntRange needs low <= high, got {low=}, {high=}")
        if step < 1 or (high - low) % step:
            raise SpaceError(
                f"IntRange step must be >= 1 and divide high - low, got {low=}, {high=}, {step=}"
            )
        self.low, self.high, self.step = int(low), int(high), int(step)

    def values(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))

    @property
    def size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    def neighbours(self, value: Any) -> list[Any]:
        return [v for v in (value - self.step, value + self.step) if self.contains(v)]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "step": self.step}

    def __repr__(self) -> str:
        step = f", step={self.step}" if self.step != 1 else ""
        return f"IntRange({self.low}, {self.high}{step})"


def dimension_from_dict(data: Any) -> Dimension:
    """Inverse of :meth:`Dimension.to_dict`."""
    if not isinstance(data, dict) or "type" not in data:
        raise SpaceError(f"a dimension is a mapping with a 'type' key, got {data!r}")
    kind = data["type"]
    if kind == "choice":
        return Choice(data.get("values", []))
    if kind == "int":
        return IntRange(data["low"], data["high"], data.get("step", 1))
    raise SpaceError(f"unknown dimension type {kind!r}; valid types: 'choice', 'int'")


def as_dimension(value: Any, *, what: str) -> Dimension:
    """Coerce a config shorthand into a Dimension.

    A Dimension passes through; a list becomes a :class:`Choice`; a scalar becomes a one-value Choice
    (a fixed setting); a mapping with ``type`` is read with :func:`dimension_from_dict`.
    ``what`` names the setting in error messages.
    """
    if isinstance(value, Dimension):
        return value
    if isinstance(value, dict):
        return dimension_from_dict(value)
    if isinstance(value, (list, tuple)):
        try:
            return Choice(list(value))
        except SpaceError as exc:
            raise SpaceError(f"{what}: {exc}") from None
    if isinstance(value, _SCALARS):
        return Choice([value])
    raise SpaceError(f"{what}: expected a list of values or a Choice/IntRange, got {value!r}")
