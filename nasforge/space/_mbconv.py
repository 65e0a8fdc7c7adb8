"""A MobileNetV3 / EfficientNet-style macro space: stages of MBConv blocks, and compound scaling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.errors import SpaceError
from nasforge.space._base import Architecture, Constraint, SearchSpace, check_width
from nasforge.space._constraints import MaxParams
from nasforge.space._dimensions import Choice, Dimension, as_dimension

if TYPE_CHECKING:
    pass

__all__ = ["BLOCK_KEYS", "MBConvSpace", "compound_scale"]

BLOCK_KEYS = ("kernel", "expand", "se", "act")
DEFAULT_STAGES: list[dict[str, Any]] = [
    {"width": [16, 24], "stride": 1},
    {"width": [24, 32], "stride": 2},
    {"width": [32, 48], "stride": 2},
    {"width": [48, 64], "stride": 1},
]
DEFAULT_BLOCK: dict[str, list[Any]] = {
    "kernel": [3, 5, 7],
    "expand": [1, 3, 4, 6],
    "se": [False, True],
    "act": ["relu", "hardswish"],
}


class MBConvSpace(SearchSpace):
    """Stages of MBConv blocks (MobileNetV2/V3 inverted residuals), searched block by block.

    The network: a 3x3 stem convolution (``stem`` channels, stride 1) -> ``len(stages)`` stages ->
    a 1x1 convolution to ``head`` channels -> global average pooling -> linear. Stage ``s`` has
    ``stage{s}.depth`` blocks (a choice from ``depth``) of ``stage{s}.width`` output channels (a
    choice from the stage's ``width`` list); its first block has the stage's stride. Block ``b``
    of stage ``s`` chooses ``stage{s}.block{b}.kernel`` (3/5/7), ``.expand`` (expansion ratio
    1/3/4/6), ``.se`` (squeeze-and-excitation on/off) and ``.act`` (relu/hardswish). Blocks beyond
    the stage's depth are inactive. A block is expand 1x1 (skipped for ratio 1) -> depthwise kxk
    -> SE -> project 1x1, each conv with batch norm, with a residual connection when its input
    and output shapes match.

    Args:
        stages: per stage ``{"width": [...], "stride": 1 or 2}``; default four stages for small
            images (28x28 / 32x32): widths 16-24, 24-32, 32-48, 48-64, strides 1, 2, 2, 1.
        depth: blocks per stage (a list of choices or a dimension), default ``[1, 2, 3]``.
        block: choices of the block settings (``kernel``, ``expand``, ``se``, ``act``).
        stem: stem channels.
        head: channels of the final 1x1 convolution.
        constraints, max_params, input_shape, num_classes: as for every space.

    Example:
        >>> import numpy as np
        >>> space = MBConvSpace()
        >>> arch = space.sample(np.random.default_rng(0))
        >>> space.describe(arch).count("|") == 3  # four stages
        True
    """

    name = "mbconv"

    def __init__(
        self,
        *,
        stages: Sequence[Mapping[str, Any]] | None = None,
        depth: Sequence[int] | Dimension = (1, 2, 3),
        block: Mapping[str, Any] | None = None,
        stem: int = 16,
        head: int = 128,
        constraints: Sequence[Constraint] = (),
        max_params: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        stage_list = [dict(s) for s in (stages if stages is not None else DEFAULT_STAGES)]
        if not stage_list:
            raise SpaceError("mbconv needs at least one stage")
        for i, st in enumerate(stage_list):
            if set(st) - {"width", "stride"} or "width" not in st:
                raise SpaceError(f"mbconv stage {i} must be {{width: [...], stride: 1 or 2}}, got {st!r}")
            if st.get("stride", 1) not in (1, 2):
                raise SpaceError(f"mbconv stage {i} stride must be 1 or 2, got {st.get('stride')!r}")
            st.setdefault("stride", 1)
        depth_value = depth if isinstance(depth, Dimension | Mapping) else list(depth)
        depth_dim = as_dimension(depth_value, what="mbconv depth")
        if min(depth_dim.values()) < 1:
            raise SpaceError(f"mbconv depth choices must be >= 1, got {depth_dim.values()}")
        block_opts = {**DEFAULT_BLOCK, **dict(block or {})}
        unknown = sorted(set(block_opts) - set(BLOCK_KEYS))
        if unknown:
            raise SpaceError(f"mbconv block has no setting {unknown}; valid settings: {list(BLOCK_KEYS)}")
        for key in ("stem", "head"):
            value = stem if key == "stem" else head
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpaceError(f"mbconv {key} must be an int >= 1, got {value!r}")
        self.stages = stage_list
        self.depth_dim = depth_dim
        self.block_dims = {k: as_dimension(block_opts[k], what=f"mbconv block.{k}") for k in BLOCK_KEYS}
        self.stem, self.head = stem, head
        self.max_params = max_params
        dims: dict[str, Dimension] = {}
        for s, st in enumerate(stage_list):
            dims[f"stage{s}.depth"] = depth_dim
            dims[f"stage{s}.width"] = Choice(list(st["width"]))
            for b in range(max(depth_dim.values())):
                for key in BLOCK_KEYS:
                    dims[f"stage{s}.block{b}.{key}"] = self.block_dims[key]
        cons = list(constraints)
        if max_params is not None:
            cons.append(MaxParams(max_params))
        super().__init__(dims, constraints=cons, input_shape=input_shape, num_classes=num_classes)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        stage, _, rest = name.partition(".")
        if not rest.startswith("block"):
            return True
        return int(rest.split(".")[0][5:]) < params[f"{stage}.depth"]

    def options(self) -> dict[str, Any]:
        return {
            "stages": [dict(s) for s in self.stages],
            "depth": self.depth_dim.to_dict(),
            "block": {k: d.to_dict() for k, d in self.block_dims.items()},
            "stem": self.stem,
            "head": self.head,
        }

    def blocks(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The realised blocks in order: ``stage, index, kernel, expand, se, act, out, stride``."""
        out = []
        for s, st in enumerate(self.stages):
            for b in range(int(params[f"stage{s}.depth"])):
                p = {k: params[f"stage{s}.block{b}.{k}"] for k in BLOCK_KEYS}
                out.append(
                    {
                        "stage": s,
                        "index": b,
                        **p,
                        "out": int(params[f"stage{s}.width"]),
                        "stride": int(st["stride"]) if b == 0 else 1,
                    }
                )
        return out

    def metric_floor(self, metric: str, *, width: float = 1.0) -> float | None:
        """Lower bounds of ``params`` and ``flops``: the stem, head and classifier alone.

        Every network has them whatever its blocks (which only add): a 3x3 stem convolution at
        full resolution, a 1x1 head convolution from the last stage's width (its narrowest
        choice) on a map of at least 1x1, and the linear classifier.
        """
        if metric not in ("params", "flops") or self.input_shape is None or self.num_classes is None:
            return None
        factor = check_width(width)
        stem, head = max(1, round(self.stem * factor)), max(1, round(self.head * factor))
        last = min(max(1, round(w * factor)) for w in self.stages[-1]["width"])
        (c, h, w), k = (int(d) for d in self.input_shape), int(self.num_classes)
        if metric == "params":  # conv weights, batch-norm scale and shift, linear weight and bias
            return float(c * stem * 9 + 2 * stem + last * head + 2 * head + head * k + k)
        return float(2 * c * stem * 9 * h * w + 2 * last * head + 2 * head * k)

    def describe(self, arch: Architecture) -> str:
        """``k3e1 > k5e6se/2-hs | ...``: one entry per block, stages separated by ``|``."""
        stages: list[list[str]] = [[] for _ in self.stages]
        for blk in self.blocks(arch.params):
            s = f"k{blk['kernel']}e{blk['expand']}x{blk['out']}"
            s += "se" if blk["se"] else ""
            s += "/2" if blk["stride"] == 2 else ""
            s += "-hs" if blk["act"] == "hardswish" else ""
            stages[blk["stage"]].append(s)
        return " | ".join(" > ".join(parts) for parts in stages)


def compound_scale(
    params: Mapping[str, Any],
    phi: float,
    *,
    space: MBConvSpace,
    resolution: int,
    alpha: float = 1.2,
    beta: float = 1.1,
    gamma: float = 1.15,
) -> tuple[dict[str, Any], float, int]:
    """EfficientNet's compound scaling (Tan & Le 2019) of an MBConv architecture.

    Depth grows by ``alpha ** phi`` (each stage's block count, rounded up; new blocks copy the
    stage's last block), width by ``beta ** phi`` (returned as the ``width`` multiplier for
    :meth:`MBConvSpace.build`) and input resolution by ``gamma ** phi``. The defaults are the
    paper's (alpha * beta^2 * gamma^2 ~= 2: each unit of phi about doubles the FLOPs).

    Returns:
        ``(params, width, resolution)``: the deeper architecture's parameters (they may leave the
        space's depth choices, so build them with ``space.make(params, check_constraints=False)``
        only when the depth fits, or use them with a space of larger ``depth``), the width
        multiplier and the new resolution.
    """
    if phi < 0:
        raise SpaceError(f"compound scaling needs phi >= 0, got {phi}")
    out = dict(params)
    for s in range(len(space.stages)):
        depth = int(params[f"stage{s}.depth"])
        new_depth = math.ceil(depth * alpha**phi)
        for b in range(depth, new_depth):
            for key in BLOCK_KEYS:
                out[f"stage{s}.block{b}.{key}"] = params[f"stage{s}.block{depth - 1}.{key}"]
        out[f"stage{s}.depth"] = new_depth
    return out, round(beta**phi, 4), math.ceil(resolution * gamma**phi)
