"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, each edge one of 5 operations (15,625 cells).

A cell is a DAG on nodes 0 (input) to 3 (output); node ``j`` is the sum of one operation on every
earlier node. The six edges are named ``edge0`` .. ``edge5`` in NAS-Bench-201's order::

    edge0: 1<-0   edge1: 2<-0   edge2: 2<-1   edge3: 3<-0   edge4: 3<-1   edge5: 3<-2

which is also the order of NB201's cell string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` and of the
``ops`` integers in the benchmark table (indices into :data:`NB201_OPS`).

This module is plain data (no torch); the network lives in :mod:`nasforge.nn._nb201`.
"""

from __future__ import annotations

import functools
import itertools
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import SpaceError
from nasforge.registry import suggest
from nasforge.space._base import Architecture, Constraint, SearchSpace
from nasforge.space._dimensions import Choice

if TYPE_CHECKING:
    pass

__all__ = [
    "EDGES",
    "EDGE_NAMES",
    "NB201_OPS",
    "NB201Space",
    "nb201_ops",
    "parse_arch_str",
    "to_arch_str",
    "unique_str",
]

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five NB201 operations, in the NB201 API order (the table's ``ops`` integers index this)."""

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""``(to_node, from_node)`` of ``edge0`` .. ``edge5``."""

EDGE_NAMES: tuple[str, ...] = tuple(f"edge{i}" for i in range(len(EDGES)))

# Input-to-output paths as edge indices (for the path encoding): 0->3, 0->1->3, 0->2->3, 0->1->2->3.
_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
_ARCH_STR_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


def parse_arch_str(s: str) -> tuple[str, ...]:
    """Split an NB201 cell string into its six operation names, in edge order.

    Args:
        s: e.g. ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"``.

    Returns:
        The six operations ``(edge0, ..., edge5)``.

    Raises:
        SpaceError: if ``s`` is not a well-formed cell string over :data:`NB201_OPS`.

    Example:
        >>> parse_arch_str("|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")[1]
        'skip_connect'
    """
    if not isinstance(s, str):
        raise SpaceError(f"an NB201 cell string must be a str like {_ARCH_STR_FORMAT!r}, got {s!r}")
    nodes = s.strip().split("+")
    if len(nodes) != 3:
        raise SpaceError(
            f"NB201 cell string {s!r} has {len(nodes)} node group(s) separated by '+'; "
            f"expected 3, like {_ARCH_STR_FORMAT!r}"
        )
    ops: list[str] = []
    for j, group in enumerate(nodes, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise SpaceError(f"NB201 cell string {s!r}: node {j} group {group!r} must look like '|op~0|...|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != j:
            raise SpaceError(
                f"NB201 cell string {s!r}: node {j} needs {j} input(s) (op~0 .. op~{j - 1}), got {group!r}"
            )
        for i, token in enumerate(tokens):
            op, sep, source = token.partition("~")
            if not sep or source != str(i):
                raise SpaceError(
                    f"NB201 cell string {s!r}: node {j} input {i} must be written 'op~{i}', got {token!r}"
                )
            if op not in NB201_OPS:
                raise SpaceError(
                    f"NB201 cell string {s!r}: unknown operation {op!r}.{suggest(op, list(NB201_OPS))} "
                    f"Valid operations: {', '.join(NB201_OPS)}"
                )
            ops.append(op)
    return tuple(ops)


def to_arch_str(ops: Sequence[str]) -> str:
    """Format six operation names (edge order) as an NB201 cell string (no validation)."""
    o = ops
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def nb201_ops(cell: Mapping[str, Any] | Sequence[Any] | str) -> tuple[str, ...]:
    """Normalise a cell to its six operation names, in edge order.

    Args:
        cell: a parameter mapping with ``edge0`` .. ``edge5`` (operation names), an NB201 cell
            string, or a sequence of six operation names or of six indices into :data:`NB201_OPS`.

    Raises:
        SpaceError: if ``cell`` is none of these; the message says what was received.
    """
    if isinstance(cell, str):
        return parse_arch_str(cell)
    if isinstance(cell, Mapping):
        missing = [e for e in EDGE_NAMES if e not in cell]
        if missing:
            raise SpaceError(
                f"an NB201 cell needs parameters {list(EDGE_NAMES)}; missing {missing} in {dict(cell)!r}"
            )
        values: Sequence[Any] = [cell[e] for e in EDGE_NAMES]
    elif isinstance(cell, Sequence | np.ndarray):
        values = list(cell)
    else:
        raise SpaceError(
            f"an NB201 cell is a mapping edge0..edge5, a cell string or 6 operations, got {cell!r}"
        )
    if len(values) != len(EDGES):
        raise SpaceError(f"an NB201 cell has 6 edges, got {len(values)} operation(s): {list(values)!r}")
    ops: list[str] = []
    for i, v in enumerate(values):
        if isinstance(v, numbers.Integral) and not isinstance(v, bool | np.bool_) and 0 <= int(v) < 5:
            ops.append(NB201_OPS[int(v)])
        elif isinstance(v, str) and v in NB201_OPS:
            ops.append(v)
        else:
            raise SpaceError(f"NB201 edge{i} must be one of {list(NB201_OPS)} or its index 0..4, got {v!r}")
    return tuple(ops)


@functools.lru_cache(maxsize=32768)
def unique_str(ops: tuple[str, ...]) -> str:
    """NAS-Bench-201's isomorphism-canonical string of a cell (six operation names, edge order).

    This is NB201's own ``Structure.to_unique_str(consider_zero=True)``: each node is written as the
    sorted ``+``-join of its incoming terms, where a ``none`` edge or an edge out of a zero node is
    ``#``, ``skip_connect`` passes its input's string through, and any other operation is
    ``(input)@op``; the output node's string is the result. It yields exactly the 6,466 classes of
    the benchmark (the table's ``canonical`` column is this string). It is a syntactic normal form:
    a fully semantic one (dropping every zero term, ``op(0) = 0``) merges the 15,625 cells into
    4,930 classes and would not match the benchmark's.

    Example:
        >>> unique_str(("avg_pool_3x3", "skip_connect", "none", "none", "none", "skip_connect"))
        '#+#+#+0'
    """
    nodes = ["0"]
    for j in (1, 2, 3):
        terms = []
        for (to, src), op in zip(EDGES, ops, strict=True):
            if to != j:
                continue
            x = nodes[src]
            if op == "none" or x == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(x)
            else:
                terms.append(f"({x})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


@functools.lru_cache(maxsize=8)
def _representatives(alphabet: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """For cells over ``alphabet``: canonical string -> its member with the smallest op indices."""
    out: dict[str, tuple[str, ...]] = {}
    for ops in itertools.product(alphabet, repeat=len(EDGE_NAMES)):  # lexicographic in alphabet order
        out.setdefault(unique_str(ops), ops)
    return out


@functools.lru_cache(maxsize=32768)
def _path_indices(ops: tuple[str, ...], alphabet: tuple[str, ...]) -> tuple[int, ...]:
    k = len(alphabet)
    out = []
    for path in _PATHS:
        names = [ops[e] for e in path]
        if any(n == "none" for n in names):
            continue  # a path through a zero edge carries nothing
        index = sum(k**length for length in range(1, len(path)))
        for j, name in enumerate(names):
            index += alphabet.index(name) * k**j
        out.append(index)
    return tuple(out)


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell search space (15,625 cells with all five operations).

    Parameters are ``edge0`` .. ``edge5`` (see the module docstring for the edge order), each a
    :class:`Choice` of operation names. Architectures computing the same function under NB201's
    definition share one ``key`` (6,466 distinct keys over the full space, see :func:`unique_str`).
    The network is the NB201 macro skeleton (see :func:`nasforge.nn.build_nb201_network`).

    Args:
        ops: the allowed operations, a subset of :data:`NB201_OPS` (kept in NB201 order);
            default all five.
        C: channels of the first stage (16 in NAS-Bench-201).
        N: cells per stage (5 in NAS-Bench-201).
        constraints: rules every produced architecture satisfies.
        input_shape: (C, H, W) of the task, needed to build networks and for parameter constraints.
        num_classes: class count of the task, likewise.

    Example:
        >>> import numpy as np
        >>> space = NB201Space()
        >>> arch = space.from_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        ...                            "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
        >>> space.to_ops(arch)
        (3, 3, 3, 1, 3, 2)
        >>> space.path_encoding(arch).shape
        (84,)
    """

    name = "nb201"

    def __init__(
        self,
        *,
        ops: Sequence[str] | None = None,
        C: int = 16,
        N: int = 5,
        constraints: Sequence[Constraint] = (),
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        chosen = list(NB201_OPS) if ops is None else ops
        if isinstance(chosen, str) or not isinstance(chosen, Sequence) or not chosen:
            raise SpaceError(f"nb201 ops must be a non-empty list drawn from {list(NB201_OPS)}, got {ops!r}")
        for op in chosen:
            if op not in NB201_OPS:
                hint = suggest(op, list(NB201_OPS)) if isinstance(op, str) else ""
                raise SpaceError(f"nb201 ops: unknown operation {op!r}.{hint} Valid: {', '.join(NB201_OPS)}")
        if len(set(chosen)) != len(chosen):
            raise SpaceError(f"nb201 ops must be distinct, got {list(chosen)}")
        for label, value in (("C", C), ("N", N)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise SpaceError(f"nb201 {label} must be an integer >= 1, got {label}={value!r}")
        self.ops: tuple[str, ...] = tuple(op for op in NB201_OPS if op in chosen)
        self.C = int(C)
        self.N = int(N)
        self._path_alphabet = tuple(op for op in self.ops if op != "none")
        edge = Choice(list(self.ops))
        super().__init__(
            dict.fromkeys(EDGE_NAMES, edge),
            constraints=constraints,
            input_shape=input_shape,
            num_classes=num_classes,
        )

    def options(self) -> dict[str, Any]:
        return {"ops": list(self.ops), "C": self.C, "N": self.N}

    def identity(self, params: Mapping[str, Any]) -> Any:
        """NB201's canonical string of the cell (:func:`unique_str`), so isomorphic cells share a key."""
        return unique_str(tuple(params[e] for e in EDGE_NAMES))

    def representative(self, arch: Architecture) -> Architecture:
        """The member of ``arch``'s isomorphism class whose operations come first in NB201 order.

        When that member violates one of the space's constraints, ``arch`` itself is returned.

        Example:
            >>> space = NB201Space()
            >>> a = space.from_ops([4, 1, 0, 1, 0, 0])  # node 1's output (edge 0) is never used,
            >>> b = space.from_ops([3, 1, 0, 1, 0, 0])  # so its operation does not matter
            >>> a.key == b.key, space.to_arch_str(space.representative(b))
            (True, '|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|')
        """
        ops = _representatives(self.ops)[unique_str(nb201_ops(arch.params))]
        if ops == nb201_ops(arch.params):
            return arch
        try:
            return self._make_ops(ops)
        except SpaceError:  # the representative breaks a constraint that arch satisfies
            return arch

    # ----------------------------------------------------------------- conversions
    def from_arch_str(self, s: str) -> Architecture:
        """The architecture of an NB201 cell string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

        Raises:
            SpaceError: if the string is malformed, uses an operation outside this space, or the
                cell violates a constraint.
        """
        return self._make_ops(parse_arch_str(s))

    def to_arch_str(self, arch: Architecture) -> str:
        """The NB201 cell string of ``arch``."""
        return to_arch_str(nb201_ops(arch.params))

    def from_ops(self, ops: Sequence[int] | np.ndarray) -> Architecture:
        """The architecture with six operation indices (into :data:`NB201_OPS`, the table's ``ops``).

        Raises:
            SpaceError: if ``ops`` is not six integers in 0..4 allowed by this space.
        """
        if isinstance(ops, str | Mapping):
            raise SpaceError(
                f"from_ops takes six integers in 0..4, got {ops!r}; use from_arch_str for strings"
            )
        values = list(ops)
        for v in values:
            if isinstance(v, str):
                raise SpaceError(f"from_ops takes six integers in 0..4, got {values!r}")
        return self._make_ops(nb201_ops(values))

    def to_ops(self, arch: Architecture) -> tuple[int, ...]:
        """Six operation indices into :data:`NB201_OPS` (the table's ``ops`` column)."""
        return tuple(NB201_OPS.index(op) for op in nb201_ops(arch.params))

    def _make_ops(self, ops: tuple[str, ...]) -> Architecture:
        for i, op in enumerate(ops):
            if op not in self.ops:
                raise SpaceError(
                    f"edge{i} uses {op!r}, which this nb201 space does not allow (ops={list(self.ops)})"
                )
        return self.make(dict(zip(EDGE_NAMES, ops, strict=True)))

    def describe(self, arch: Architecture) -> str:
        """The NB201 cell string of ``arch``."""
        return self.to_arch_str(arch)

    # ----------------------------------------------------------------- encodings
    def path_encoding(self, arch: Architecture) -> np.ndarray:
        """The BANANAS path encoding: one bit per possible input-to-output path of operations.

        A cell has four input-to-output paths (0→3, 0→1→3, 0→2→3, 0→1→2→3); a path exists when
        none of its edges is ``none``. With ``k`` non-``none`` operations in the space the
        encoding has ``k + k² + k³`` bits (84 for the full space), ordered by path length and then
        by the operations' indices (first edge least significant), as in White et al. (2021).
        """
        alphabet = self._path_alphabet
        k = len(alphabet)
        out = np.zeros(k + k**2 + k**3, dtype=np.float32)
        out[list(_path_indices(nb201_ops(arch.params), alphabet))] = 1.0
        return out

    def adjacency_encoding(self, arch: Architecture) -> np.ndarray:
        """The cell as a node adjacency matrix with an operation one-hot per entry, flattened.

        Entry ``[j, i, o]`` of the 4 x 4 x 5 tensor is 1 when edge ``i -> j`` carries operation
        ``o`` of :data:`NB201_OPS` (``none`` included); the 10 entries that are not edges of the
        cell stay 0. It carries the same information as the one-hot :meth:`encode`, laid out as a
        graph (what graph-based predictors expect).
        """
        out = np.zeros((4, 4, len(NB201_OPS)), dtype=np.float32)
        for (j, i), op in zip(EDGES, nb201_ops(arch.params), strict=True):
            out[j, i, NB201_OPS.index(op)] = 1.0
        return out.reshape(-1)
