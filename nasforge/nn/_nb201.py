"""The NAS-Bench-201 network: a stem, three stages of cells, two ResNet reduction blocks and a head.

Layer for layer the ``TinyNetwork`` / ``InferCell`` / ``ResNetBasicblock`` of the NB201 reference
code (D-X-Y/AutoDL-Projects, MIT), so parameter counts equal the benchmark's ``params_M``:

- stem: Conv3x3(C_in → C, no bias) → BN;
- stage ``s`` (channels C, 2C, 4C): ``N`` cells; a cell's node ``j`` is the sum over earlier nodes
  ``i`` of ``op_ij(node_i)``, the cell's output is node 3;
- between stages a ResNet basic block: ReLU-Conv3x3(stride 2)-BN → ReLU-Conv3x3-BN, plus a shortcut
  AvgPool2x2(stride 2) → Conv1x1 (no bias, no BN);
- head: BN → ReLU → global average pooling → Linear.

Cell operations: ``none`` (zeros), ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3``
(ReLU → Conv (no bias) → BN), ``avg_pool_3x3`` (stride 1, padding 1, padding not counted).
Every BatchNorm is affine with running statistics, as in the reference (``affine=True,
track_running_stats=True``): that is what the table's parameter formula counts
(0.24304 M per 3x3 edge = 5 cells x (9C² + 2C) over C = 16, 32, 64; without the affine
parameters it would be 0.24192 M).

Two departures from the reference, neither changing parameters or results on even input sizes:
the shortcut pooling uses ``ceil_mode=True`` so that odd feature maps (and 1x1 ones) keep the
same size as the strided convolution, and edges whose result cannot reach the cell's output are
not computed (their modules are still built, as in the benchmark).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn._chain import _check_input_shape, _is_int
from nasforge.space._nb201 import EDGES, nb201_ops, to_arch_str

__all__ = ["NB201Cell", "NB201Network", "ReLUConvBN", "ResNetBasicBlock", "Zero", "build_nb201_network"]

Device = torch.device | str | None


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv2d (no bias) → BatchNorm2d: NB201's ``nor_conv`` operation."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, *, device: Device = None
    ) -> None:
        super().__init__(
            OrderedDict(
                act=nn.ReLU(),
                conv=nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False, device=device),
                bn=nn.BatchNorm2d(c_out, device=device),
            )
        )


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two ReLU-Conv3x3-BN (the first with stride 2) plus a pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, *, device: Device = None) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, device=device)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, device=device)
        # ceil_mode keeps odd sizes equal to the strided conv's ceil(H / 2); identical for even H.
        self.downsample = nn.Sequential(
            OrderedDict(
                pool=nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False),
                conv=nn.Conv2d(c_in, c_out, 1, bias=False, device=device),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Zero(nn.Module):
    """NB201's ``none`` operation: all zeros (cells skip these edges instead of calling them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _make_op(op: str, channels: int, device: Device) -> nn.Module:
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, device=device)
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, device=device)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    if op == "none":
        return Zero()
    return nn.Identity()  # skip_connect


class NB201Cell(nn.Module):
    """One NB201 cell (stride 1, ``channels`` in and out).

    Args:
        ops: six operation names in edge order (see :mod:`nasforge.space._nb201`).
        channels: the stage's channel count.
        device: where to create the parameters.

    Attributes:
        ops: the operations; ``edges[i]`` is the module of ``ops[i]``.
    """

    def __init__(self, ops: Sequence[str], channels: int, *, device: Device = None) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(_make_op(op, channels, device) for op in self.ops)
        # Nodes whose value reaches node 3 through non-zero edges; the rest is never computed.
        needed = {3}
        for i in reversed(range(len(EDGES))):
            to, src = EDGES[i]
            if to in needed and self.ops[i] != "none":
                needed.add(src)
        self._plan: list[tuple[int, list[tuple[int, int]]]] = [
            (j, [(i, src) for i, (to, src) in enumerate(EDGES) if to == j and self.ops[i] != "none"])
            for j in (1, 2, 3)
            if j in needed
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: x}
        for j, incoming in self._plan:
            out: torch.Tensor | None = None
            for i, src in incoming:
                y = self.edges[i](nodes[src])
                out = y if out is None else out + y
            nodes[j] = out if out is not None else torch.zeros_like(x)
        return nodes[3]

    def extra_repr(self) -> str:
        return to_arch_str(self.ops)


def nb201_skeleton(
    in_channels: int, C: int, N: int, make_cell: Callable[[int], nn.Module], *, device: Device = None
) -> tuple[nn.Sequential, list[nn.Module], nn.Sequential, int]:
    """The NB201 macro skeleton around the cells (shared by the network and the supernet).

    Returns the stem (Conv3x3 → BN), the three stages in order (``N`` cells from
    ``make_cell(channels)`` each, a :class:`ResNetBasicBlock` doubling the channels between
    stages), the final BN → ReLU, and the last stage's channel count.
    """
    stem = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, C, 3, 1, 1, bias=False, device=device),
            bn=nn.BatchNorm2d(C, device=device),
        )
    )
    cells: list[nn.Module] = []
    channels = C
    for stage in range(3):
        if stage:
            cells.append(ResNetBasicBlock(channels, 2 * channels, device=device))
            channels *= 2
        cells.extend(make_cell(channels) for _ in range(N))
    lastact = nn.Sequential(OrderedDict(bn=nn.BatchNorm2d(channels, device=device), act=nn.ReLU()))
    return stem, cells, lastact, channels


class NB201Network(nn.Module):
    """The NAS-Bench-201 network for one cell; build it with :func:`build_nb201_network`.

    Attributes:
        ops: the cell's six operations.
        input_shape: the ``(channels, height, width)`` it was built for.
        num_classes: number of output logits.
    """

    def __init__(
        self,
        ops: Sequence[str],
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        C: int = 16,
        N: int = 5,
        device: Device = None,
    ) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.stem, cells, self.lastact, channels = nb201_skeleton(
            input_shape[0], C, N, lambda c: NB201Cell(self.ops, c, device=device), device=device
        )
        self.cells = nn.Sequential(*cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(B, num_classes)`` for a batch ``(B, C, H, W)``."""
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def extra_repr(self) -> str:
        shape = tuple(self.input_shape)
        return f"cell={to_arch_str(self.ops)}, input_shape={shape}, num_classes={self.num_classes}"


def build_nb201_network(
    params_or_ops: Mapping[str, Any] | Sequence[Any] | str,
    input_shape: Sequence[int],
    num_classes: int,
    *,
    C: int = 16,
    N: int = 5,
    device: Device = None,
) -> NB201Network:
    """Build the NAS-Bench-201 network of a cell for any input shape and class count.

    Args:
        params_or_ops: the cell: an architecture's params (``edge0`` .. ``edge5``), an NB201 cell
            string, or six operation names or indices into ``NB201_OPS``.
        input_shape: ``(channels, height, width)`` of one input; any positive sizes (two stride-2
            reductions take 32x32 to 8x8 and 28x28 to 7x7; a 1x1 map stays 1x1).
        num_classes: number of output logits.
        C: channels of the first stage (second and third: 2C, 4C).
        N: cells per stage.
        device: where to create the parameters; ``"meta"`` allocates nothing (for counting).

    Returns:
        An :class:`NB201Network`; with ``C=16, N=5`` on (3, 32, 32) and 10 classes its parameter
        count is the benchmark's ``params_M * 1e6``.

    Raises:
        SpaceError: if the cell is malformed.
        ConfigError: if ``input_shape``, ``num_classes``, ``C`` or ``N`` is invalid.

    Example:
        >>> from nasforge.hardware import count_params
        >>> cell = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
        >>> net = build_nb201_network(cell, (3, 32, 32), 10)
        >>> count_params(net)  # 73306 + 243040 (one 3x3 edge) + 28000 (one 1x1 edge)
        344346
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    ops = nb201_ops(params_or_ops)
    shape = _check_input_shape(input_shape)
    if not _is_int(num_classes) or num_classes < 1:
        raise ConfigError(f"num_classes must be an int >= 1, got {num_classes!r}.")
    for label, value in (("C", C), ("N", N)):
        if not _is_int(value) or value < 1:
            raise ConfigError(f"NB201 network {label} must be an int >= 1, got {label}={value!r}.")
    return NB201Network(ops, shape, int(num_classes), C=int(C), N=int(N), device=device)
