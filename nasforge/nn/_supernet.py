"""Weight-sharing supernet of the NAS-Bench-201 cell space.

One network holds every operation of every cell edge (the NB201 macro skeleton of
:mod:`nasforge.nn._nb201` with "mixed" edges) and runs any cell of the space in one of three modes:

- **path** (single-path one-shot, SPOS): each edge runs the one operation of a given cell, so the
  output equals that of the stand-alone :class:`~nasforge.nn._nb201.NB201Network` with the same
  weights (:meth:`NB201SuperNet.extract` builds it);
- **mixture** (DARTS): each edge returns the softmax-weighted sum of all its operations;
- **hard** (GDAS): each edge runs one sampled operation, scaled by a straight-through weight whose
  gradient reaches the architecture logits of every operation.

As in the NB201 reference implementations of DARTS and GDAS, one set of edge choices is shared by
all cells (the space is a single cell repeated). Batch-norm statistics depend on the path, so
inherited-weight evaluation recalibrates them per sub-network (:func:`recalibrate_bn`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nasforge.errors import ConfigError, SpaceError
from nasforge.nn._chain import _check_input_shape
from nasforge.nn._nb201 import NB201Network, _make_op, nb201_skeleton
from nasforge.space._nb201 import EDGES, NB201_OPS

__all__ = ["MixedEdge", "NB201SuperNet", "recalibrate_bn"]

Device = torch.device | str | None


class MixedEdge(nn.Module):
    """All candidate operations of one cell edge.

    Args:
        ops: the candidate operation names (a subset of ``NB201_OPS``, in any order).
        channels: the stage's channel count.
    """

    def __init__(self, ops: Sequence[str], channels: int, *, device: Device = None) -> None:
        super().__init__()
        self.names = tuple(ops)
        self.candidates = nn.ModuleList(_make_op(op, channels, device) for op in self.names)

    def forward_path(self, x: torch.Tensor, index: int) -> torch.Tensor | None:
        """One operation; ``None`` for ``none`` (zeros), which callers skip."""
        if self.names[index] == "none":
            return None
        out: torch.Tensor = self.candidates[index](x)
        return out

    def forward_mixture(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """DARTS: the ``weights``-weighted sum of every operation (``none`` contributes zero)."""
        out: torch.Tensor | None = None
        for k, (name, op) in enumerate(zip(self.names, self.candidates, strict=True)):
            if name == "none":
                continue
            y = weights[k] * op(x)
            out = y if out is None else out + y
        return out if out is not None else x * 0.0

    def forward_hard(self, x: torch.Tensor, index: int, hard_weights: torch.Tensor) -> torch.Tensor:
        """GDAS: only operation ``index`` runs; its output is scaled by its straight-through weight
        (1 in value) and the other weights (0 in value) are added so their gradient is not lost."""
        rest = sum(hard_weights[k] for k in range(len(self.names)) if k != index)
        if self.names[index] == "none":
            return x * 0.0 + hard_weights[index] * 0.0 + rest
        out: torch.Tensor = hard_weights[index] * self.candidates[index](x) + rest
        return out


class _SuperCell(nn.Module):
    def __init__(self, ops: Sequence[str], channels: int, *, device: Device = None) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(ops, channels, device=device) for _ in EDGES)

    def forward(self, x: torch.Tensor, mode: str, choice: object) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            out: torch.Tensor | None = None
            for i, (to, src) in enumerate(EDGES):
                if to != j:
                    continue
                edge: MixedEdge = self.edges[i]  # type: ignore[assignment]
                y: torch.Tensor | None
                if mode == "path":
                    y = edge.forward_path(nodes[src], choice[i])  # type: ignore[index]
                elif mode == "mixture":
                    y = edge.forward_mixture(nodes[src], choice[i])  # type: ignore[index]
                else:
                    index: Sequence[int] = choice[0]  # type: ignore[index]
                    hard: torch.Tensor = choice[1]  # type: ignore[index]
                    y = edge.forward_hard(nodes[src], int(index[i]), hard[i])
                if y is not None:
                    out = y if out is None else out + y
            nodes.append(out if out is not None else torch.zeros_like(x))
        return nodes[3]


class NB201SuperNet(nn.Module):
    """The NB201 network with every candidate operation on every edge (see the module docstring).

    Args:
        input_shape: ``(channels, height, width)`` of one input.
        num_classes: number of output logits.
        ops: candidate operations (default all five of ``NB201_OPS``).
        C: channels of the first stage (then 2C, 4C).
        N: cells per stage.

    Example:
        >>> net = NB201SuperNet((1, 28, 28), 10, C=8, N=1)
        >>> x = torch.zeros(2, 1, 28, 28)
        >>> net(x, path=("nor_conv_3x3",) * 6).shape
        torch.Size([2, 10])
        >>> net(x, weights=torch.full((6, 5), 0.2)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        ops: Sequence[str] = NB201_OPS,
        C: int = 16,
        N: int = 5,
        device: Device = None,
    ) -> None:
        super().__init__()
        shape = _check_input_shape(input_shape)
        unknown = [op for op in ops if op not in NB201_OPS]
        if unknown or not ops or len(set(ops)) != len(ops):
            raise ConfigError(f"supernet ops must be distinct names from {list(NB201_OPS)}, got {list(ops)}")
        for label, value in (("C", C), ("N", N), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"supernet {label} must be an int >= 1, got {value!r}")
        self.ops = tuple(ops)
        self.input_shape = shape
        self.num_classes = num_classes
        self.C, self.N = C, N
        self.stem, cells, self.lastact, channels = nb201_skeleton(
            shape[0], C, N, lambda c: _SuperCell(self.ops, c, device=device), device=device
        )
        self.cells = nn.ModuleList(cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes, device=device)

    def indices(self, cell: Sequence[str]) -> list[int]:
        """Positions in :attr:`ops` of a cell's six operations."""
        if len(cell) != len(EDGES):
            raise SpaceError(f"an NB201 cell has 6 edges, got {list(cell)}")
        missing = [op for op in cell if op not in self.ops]
        if missing:
            raise SpaceError(f"the supernet has no operation {missing[0]!r}; it has {list(self.ops)}")
        return [self.ops.index(op) for op in cell]

    def forward(
        self,
        x: torch.Tensor,
        *,
        path: Sequence[str] | None = None,
        weights: torch.Tensor | None = None,
        hard: tuple[Sequence[int], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits for ``x`` with exactly one of:

        Args:
            path: a cell (six operation names): single-path mode.
            weights: ``(6, len(ops))`` operation weights (rows summing to 1): DARTS mixture mode.
            hard: ``(indices, hard_weights)``: the sampled operation of each edge and the
                ``(6, len(ops))`` straight-through weights: GDAS mode.
        """
        given = [v is not None for v in (path, weights, hard)]
        if sum(given) != 1:
            raise ConfigError("NB201SuperNet.forward needs exactly one of path=, weights= or hard=")
        mode: str
        choice: object
        if path is not None:
            mode, choice = "path", self.indices(path)
        elif weights is not None:
            if tuple(weights.shape) != (len(EDGES), len(self.ops)):
                raise ConfigError(f"weights must have shape (6, {len(self.ops)}), got {tuple(weights.shape)}")
            mode, choice = "mixture", weights
        else:
            mode, choice = "hard", hard
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h, mode, choice) if isinstance(cell, _SuperCell) else cell(h)
        h = self.lastact(h)
        out: torch.Tensor = self.classifier(torch.flatten(self.pool(h), 1))
        return out

    def extract(self, cell: Sequence[str]) -> NB201Network:
        """The stand-alone network of ``cell`` with this supernet's weights (copied)."""
        idx = self.indices(cell)
        with torch.random.fork_rng(devices=[]):
            net = NB201Network(tuple(cell), self.input_shape, self.num_classes, C=self.C, N=self.N)
        state = {}
        for name, tensor in self.state_dict().items():
            parts = name.split(".")
            # cells.{c}.edges.{e}.candidates.{k}.rest -> cells.{c}.edges.{e}.rest for k == chosen op
            if len(parts) > 5 and parts[0] == "cells" and parts[2] == "edges" and parts[4] == "candidates":
                if int(parts[5]) != idx[int(parts[3])]:
                    continue
                name = ".".join(parts[:4] + parts[6:])
            state[name] = tensor.clone()
        net.load_state_dict(state, strict=True)
        return net


def recalibrate_bn(
    net: nn.Module, batches: Iterable[torch.Tensor], forward: object = None, *, max_batches: int | None = None
) -> int:
    """Re-estimate every BatchNorm's running mean and variance for the current path.

    Statistics are reset, then accumulated as an exact average (``momentum=None``) over ``batches``
    in training mode without gradients; the modules' momentum and the network's mode are restored.

    Args:
        net: the network (a supernet or any module with BatchNorm layers).
        batches: input tensors.
        forward: a callable ``forward(x)`` to run instead of ``net(x)`` (e.g. a supernet path).
        max_batches: stop after this many batches.

    Returns:
        The number of batches used.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in bns]
    was_training = net.training
    run = forward if callable(forward) else net
    used = 0
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        net.train()
        with torch.no_grad():
            for x in batches:
                if max_batches is not None and used >= max_batches:
                    break
                run(x)
                used += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        net.train(was_training)
    return used
