"""The NAS-Bench-Macro space: 8 searchable layers, each identity or one of two MobileNetV2 blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.errors import SpaceError
from nasforge.space._base import Architecture, Constraint, SearchSpace
from nasforge.space._dimensions import Choice

__all__ = ["MACRO_OPS", "MacroSpace"]

MACRO_OPS = {"0": "identity", "1": "MB3_K3", "2": "MB6_K5"}
N_LAYERS = 8


class MacroSpace(SearchSpace):
    """NAS-Bench-Macro (Su et al., CVPR 2021): 3^8 = 6,561 macro architectures on CIFAR-10.

    Dimensions ``layer0`` .. ``layer7``, each a Choice of the strings ``"0"`` (identity), ``"1"``
    (MobileNetV2 block, kernel 3, expansion 3: MB3_K3) and ``"2"`` (MB6_K5), the digits of the
    benchmark's 8-character architecture strings. Identity layers are kept as they are (no
    canonicalisation: the table lists every string, including functionally equal ones). There is no
    network builder; use it with the ``nb_macro`` table estimator.

    Args:
        constraints: rules every produced architecture satisfies.

    Example:
        >>> space = MacroSpace()
        >>> space.to_arch_str(space.from_arch_str("22212220"))
        '22212220'
    """

    name = "nb_macro"

    def __init__(self, *, constraints: Sequence[Constraint] = ()) -> None:
        dims = {f"layer{i}": Choice(list(MACRO_OPS)) for i in range(N_LAYERS)}
        super().__init__(dims, constraints=constraints)

    def options(self) -> dict[str, Any]:
        return {}

    def to_arch_str(self, arch: Architecture) -> str:
        """The benchmark's key, e.g. ``"22212220"`` (one digit per layer)."""
        return "".join(str(arch.params[f"layer{i}"]) for i in range(N_LAYERS))

    def from_arch_str(self, text: str) -> Architecture:
        """The architecture of an 8-digit string such as ``"22212220"``."""
        if not isinstance(text, str) or len(text) != N_LAYERS or any(c not in MACRO_OPS for c in text):
            raise SpaceError(
                f"a NAS-Bench-Macro architecture is {N_LAYERS} digits from 0, 1, 2 (e.g. '22212220'), "
                f"got {text!r}"
            )
        return self.make({f"layer{i}": c for i, c in enumerate(text)})

    def describe(self, arch: Architecture) -> str:
        """``MB6_K5 > MB6_K5 > identity > ...`` (one entry per layer)."""
        return " > ".join(MACRO_OPS[str(arch.params[f"layer{i}"])] for i in range(N_LAYERS))
