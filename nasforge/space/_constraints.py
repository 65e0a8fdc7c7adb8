"""Built-in constraints: :class:`MaxParams` and :class:`Predicate`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nasforge.errors import SpaceError
from nasforge.space._architecture import Architecture, Constraint

__all__ = ["MaxParams", "Predicate", "constraint_from_dict"]


class MaxParams(Constraint):
    """At most ``limit`` trainable parameters for the task the space is bound to.

    The network is built once per architecture (a few milliseconds for small networks) and counts
    are cached by architecture key.

    Args:
        limit: the largest allowed parameter count, ``>= 1``.
    """

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SpaceError(f"MaxParams limit must be a positive integer, got {limit=}")
        self.limit = limit
        self._cache: dict[tuple[str, Any, Any], int] = {}

    def __call__(self, arch: Architecture) -> bool:
        space = arch.space
        cache_key = (arch.key, space.input_shape, space.num_classes)
        if cache_key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[cache_key] = space.count_params(arch)
        return self._cache[cache_key] <= self.limit

    def describe(self) -> str:
        return f"MaxParams({self.limit:,})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "max_params", "limit": self.limit}

    def __repr__(self) -> str:
        return f"MaxParams({self.limit})"


class Predicate(Constraint):
    """A Python function of the architecture's params that returns True for allowed points.

    Args:
        fn: ``fn(params) -> bool``.
        name: shown in error messages (defaults to the function's name).

    Example:
        >>> no_pool_first = Predicate(lambda p: "pool" not in p["layer0.op"], name="no pool first")
    """

    def __init__(self, fn: Callable[[Mapping[str, Any]], bool], *, name: str | None = None) -> None:
        if not callable(fn):
            raise SpaceError(f"Predicate needs a callable, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "predicate")

    def __call__(self, arch: Architecture) -> bool:
        return bool(self.fn(arch.params))

    def describe(self) -> str:
        return f"Predicate({self.name})"


def constraint_from_dict(data: Any) -> Constraint:
    """Read a constraint written by ``to_dict`` (only serialisable constraints)."""
    if isinstance(data, Mapping) and data.get("type") == "max_params":
        return MaxParams(int(data["limit"]))
    raise SpaceError(f"unknown constraint {data!r}; valid: {{type: max_params, limit: N}}")
