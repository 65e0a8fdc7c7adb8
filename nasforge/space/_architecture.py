"""Architecture and Constraint: a frozen point of a search space, and a rule every point must satisfy.

:class:`~nasforge.space.SearchSpace` (:mod:`nasforge.space._base`) makes and checks them; they only
hold a reference to their space, so this module imports it for type checking alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError, SpaceError

if TYPE_CHECKING:
    import torch.nn

    from nasforge.space._base import SearchSpace

__all__ = ["Architecture", "Constraint", "check_width"]


def check_width(width: Any) -> float:
    """Validate a width multiplier (a positive finite number)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < float("inf"):
        raise ConfigError(f"width (the width multiplier) must be a positive number, got {width!r}")
    return float(width)


class Constraint:
    """A rule every sampled, mutated or enumerated architecture must satisfy.

    Subclasses implement :meth:`__call__` (True when satisfied) and :meth:`describe`.
    """

    def __call__(self, arch: Architecture) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """A short human description, used in error messages."""
        return type(self).__name__

    def to_dict(self) -> dict[str, Any] | None:
        """JSON description for run directories, or None if not serialisable (a Python predicate)."""
        return None


class Architecture:
    """A frozen point of a search space.

    Create one with ``space.make(params)`` (validated) or ``space.sample(rng)``; never mutate it.

    Attributes:
        space: the space it belongs to.
        params: the canonical, active parameter values (read-only mapping).
        key: a stable 16-hex-digit hash of the space name and canonical params; equal keys mean
            the same network.
    """

    __slots__ = ("_params", "key", "space")

    def __init__(self, space: SearchSpace, params: Mapping[str, Any], key: str) -> None:
        self.space = space
        self._params = MappingProxyType(dict(params))
        self.key = key

    @property
    def params(self) -> Mapping[str, Any]:
        return self._params

    def __getitem__(self, name: str) -> Any:
        return self._params[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Architecture) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Architecture({self.space.name}, key={self.key}, {dict(self._params)})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"space": <space spec>, "params": {...}, "key": ...}``."""
        return {"space": self.space.to_dict(), "params": dict(self._params), "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: SearchSpace | None = None) -> Architecture:
        """Rebuild an architecture written by :meth:`to_dict` (the params are validated again).

        Args:
            data: the mapping.
            space: the space to place it in; by default the one described in ``data["space"]``.
        """
        if not isinstance(data, Mapping) or "params" not in data:
            raise SpaceError("an architecture file holds a mapping with 'space' and 'params' keys")
        if space is None:
            from nasforge.space._load import space_from_config  # _load imports this module

            space = space_from_config(data.get("space"))
        return space.make(data["params"])

    def build(
        self,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        *,
        device: Any = None,
        width: float = 1.0,
    ) -> torch.nn.Module:
        """Build the network (see :meth:`SearchSpace.build`)."""
        if width == 1.0:  # spaces written before the width knob keep working
            return self.space.build(self, input_shape, num_classes, device=device)
        if "width" not in inspect.signature(self.space.build).parameters:
            raise ConfigError(
                f"space '{self.space.name}' cannot scale its networks' width; use width=1 with it"
            )
        return self.space.build(self, input_shape, num_classes, device=device, width=width)
