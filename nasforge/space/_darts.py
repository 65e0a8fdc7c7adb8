"""The DARTS cell space of NAS-Bench-301 (normal and reduction cells).

A DARTS cell has two input nodes (0, 1: the outputs of the two previous cells) and four
intermediate nodes (2..5); the cell's output concatenates nodes 2..5. Each intermediate node sums
two operations applied to two earlier nodes. The 14 possible edges are numbered node by node:

====  ===============  ==============================
node  edges            inputs (edge ``first + i`` reads node ``i``)
====  ===============  ==============================
2     0, 1             nodes 0, 1 (both, always)
3     2, 3, 4          two of nodes 0..2
4     5, 6, 7, 8       two of nodes 0..3
5     9 .. 13          two of nodes 0..4
====  ===============  ==============================

Dimension names are the NAS-Bench-301 ConfigSpace names (``config_space_v2.json``) without their
common prefix ``NetworkSelectorDatasetInfo_COLON_darts_COLON_`` (:data:`CONFIGSPACE_PREFIX`):
``edge_normal_0`` .. ``edge_normal_13``, ``inputs_node_normal_3`` .. ``inputs_node_normal_5`` and the
same for ``reduce``. :func:`to_configspace` / :meth:`DartsSpace.from_configspace` convert between
the two spellings. The fidelity ``epoch`` of the ConfigSpace is not a dimension (estimators take it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nasforge.errors import SpaceError
from nasforge.space._base import Architecture, Constraint, SearchSpace
from nasforge.space._dimensions import Choice, Dimension

__all__ = [
    "CELLS",
    "CONFIGSPACE_PREFIX",
    "DARTS_OPS",
    "DartsSpace",
    "edge_input",
    "to_configspace",
]

CONFIGSPACE_PREFIX = "NetworkSelectorDatasetInfo_COLON_darts_COLON_"
DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CELLS = ("normal", "reduce")
# first edge index of each intermediate node; node n has n edges (one per earlier node)
_FIRST_EDGE = {2: 0, 3: 2, 4: 5, 5: 9}


def edge_input(edge: int) -> tuple[int, int]:
    """``(node, input)`` of edge number ``edge`` (0..13): the node it feeds and the node it reads."""
    for node in (5, 4, 3, 2):
        if edge >= _FIRST_EDGE[node]:
            if edge - _FIRST_EDGE[node] >= node:
                break
            return node, edge - _FIRST_EDGE[node]
    raise SpaceError(f"a DARTS cell has edges 0..13, got {edge=}")


def _pairs(node: int) -> list[str]:
    # ConfigSpace order: "0_1", "0_2", ..., "1_2", ... (lexicographic pairs of earlier nodes)
    return [f"{a}_{b}" for a in range(node) for b in range(a + 1, node)]


def _dimensions() -> dict[str, Dimension]:
    dims: dict[str, Dimension] = {}
    ops = Choice(list(DARTS_OPS))
    for cell in CELLS:
        # an input choice comes before the edges it switches on (activity looks backwards only)
        for node in (2, 3, 4, 5):
            if node > 2:
                dims[f"inputs_node_{cell}_{node}"] = Choice(_pairs(node))
            for i in range(node):
                dims[f"edge_{cell}_{_FIRST_EDGE[node] + i}"] = ops
    return dims


def _activity() -> dict[str, tuple[str, frozenset[str]] | None]:
    """For each edge dimension: ``(parent input dimension, input pairs that activate it)``."""
    out: dict[str, tuple[str, frozenset[str]] | None] = {}
    for cell in CELLS:
        for node in (2, 3, 4, 5):
            for i in range(node):
                name = f"edge_{cell}_{_FIRST_EDGE[node] + i}"
                if node == 2:
                    out[name] = None
                else:
                    pairs = frozenset(p for p in _pairs(node) if str(i) in p.split("_"))
                    out[name] = (f"inputs_node_{cell}_{node}", pairs)
    return out


_ACTIVITY = _activity()


def to_configspace(arch: Architecture | Mapping[str, Any]) -> dict[str, Any]:
    """The active values under their full NAS-Bench-301 ConfigSpace names (no ``epoch``)."""
    params = arch.params if isinstance(arch, Architecture) else arch
    return {CONFIGSPACE_PREFIX + k: v for k, v in params.items()}


class DartsSpace(SearchSpace):
    """The DARTS / NAS-Bench-301 cell space: 34 categorical dimensions, 24 of them conditional.

    Per cell (``normal``, ``reduce``): ``inputs_node_{cell}_{3,4,5}`` pick the two earlier nodes
    each intermediate node reads (``"0_1"``, ``"0_2"``, ...), and ``edge_{cell}_{0..13}`` pick the
    operation of each edge among :data:`DARTS_OPS`. Edges 0 and 1 (node 2) are always active; every
    other edge is active only when its node selected that input, exactly as the 24 conditions of
    NAS-Bench-301's ``config_space_v2.json`` say, so a point holds 2 x (3 + 8) = 22 active values.
    Inactive edges are dropped from :attr:`Architecture.params` (and encode as NAS-Bench-301's
    ``#na#``). The space has about 10^18 points; it is meant for the NAS-Bench-301 surrogate
    (:class:`nasforge.estimate._nb301.NB301Surrogate`).

    There is **no network builder yet**: :meth:`build` raises :class:`SpaceError` (the base class
    behaviour); training DARTS cells needs a cell builder in ``nasforge.nn``, not written so far.

    Args:
        constraints: rules every produced architecture satisfies.

    Example:
        >>> import numpy as np
        >>> space = DartsSpace()
        >>> arch = space.sample(np.random.default_rng(0))
        >>> len(arch.params)
        22
        >>> sorted(space.genotype(arch))
        ['normal', 'normal_concat', 'reduce', 'reduce_concat']
    """

    name = "darts"

    def __init__(self, *, constraints: Sequence[Constraint] = ()) -> None:
        super().__init__(_dimensions(), constraints=constraints)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        rule = _ACTIVITY.get(name)
        return rule is None or params.get(rule[0]) in rule[1]

    def options(self) -> dict[str, Any]:
        return {}

    def from_configspace(self, config: Mapping[str, Any]) -> Architecture:
        """The architecture of a NAS-Bench-301 ConfigSpace configuration (full or short names).

        ``epoch`` and inactive values, if present, are ignored.
        """
        params: dict[str, Any] = {}
        for key, value in config.items():
            short = key[len(CONFIGSPACE_PREFIX) :] if key.startswith(CONFIGSPACE_PREFIX) else key
            if short == "epoch":
                continue
            params[short] = value
        active = {k: v for k, v in params.items() if k not in _ACTIVITY or self.is_active(k, params)}
        return self.make(active)

    def genotype(self, arch: Architecture) -> dict[str, Any]:
        """DARTS ``Genotype`` fields: per cell a list of ``(op, input node)`` pairs, two per node.

        Returns:
            ``{"normal": [...8 pairs], "normal_concat": [2, 3, 4, 5], "reduce": [...],
            "reduce_concat": [2, 3, 4, 5]}``.
        """
        out: dict[str, Any] = {}
        for cell in CELLS:
            pairs = []
            for edge in range(14):
                name = f"edge_{cell}_{edge}"
                if name in arch.params:
                    pairs.append((arch.params[name], edge_input(edge)[1]))
            out[cell] = pairs
            out[f"{cell}_concat"] = [2, 3, 4, 5]
        return out

    def describe(self, arch: Architecture) -> str:
        """One line: ``normal: sep_conv_3x3<0 skip_connect<1 | ... ; reduce: ...`` (op<input per node)."""
        geno = self.genotype(arch)
        cells = []
        for cell in CELLS:
            pairs = geno[cell]
            nodes = [" ".join(f"{op}<{i}" for op, i in pairs[k : k + 2]) for k in range(0, 8, 2)]
            cells.append(f"{cell}: " + " | ".join(nodes))
        return "; ".join(cells)
