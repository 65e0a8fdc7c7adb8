"""The detector space: a searched backbone, an FPN-lite neck and a CenterNet head (issue 23).

The network (built by :func:`nasforge.nn.build_detector`):

- a 3×3 ConvBN-act **stem** of stride 2 (``stem`` channels);
- ``scales`` (2 or 3) **backbone stages**; stage ``s`` has ``stage{s}.depth`` blocks of one
  ``stage{s}.op`` (``conv``: ConvBN-act as in the chain CNN; ``mbconv``: MobileNetV2 inverted
  residual, expansion 3; ``k1kx`` / ``k1kx_rep``: DAMO-YOLO's TinyNAS block, plain or with a
  RepVGG k×k conv, bottleneck ``stage{s}.bottleneck`` × width; ``repvgg`` / ``qarep``), all of
  ``stage{s}.width`` output channels and ``stage{s}.kernel`` kernels; the first block of a stage
  has the stage's stride (from the ``stages`` option, 2 by default);
- an **FPN-lite neck**: a 1×1 ConvBN lateral to ``neck.width`` channels on every stage output,
  top-down nearest upsampling and addition down to the first stage's map, then ``neck.depth``
  3×3 ConvBN-act layers. It returns **one map, at the first stage's stride** (4 with the
  defaults), because the CenterNet head decodes one map of centres: a multi-scale (FCOS-style)
  head would need a PAN and per-level outputs, and is left for later;
- a **CenterNet head** (:class:`nasforge.detect.CenterNetHead`) of ``head.depth`` hidden 3×3
  convs of ``head.width`` channels per branch.

The built module is a :class:`nasforge.detect.CenterNet`: ``model(x)`` gives the head's maps,
``model.loss(x, boxes, labels)`` the training loss, ``model.predict(x)`` boxes in input pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.errors import SpaceError
from nasforge.space._base import Architecture, Constraint, SearchSpace, check_width
from nasforge.space._constraints import MaxParams
from nasforge.space._dimensions import Dimension, as_dimension
from nasforge.space._vocab import ACTIVATION_MODULES

if TYPE_CHECKING:
    pass

__all__ = ["DETECTOR_OPS", "DetectorSpace"]

DETECTOR_OPS = ("conv", "mbconv", "k1kx", "k1kx_rep", "repvgg", "qarep")
STAGE_KEYS = ("op", "width", "depth", "kernel", "bottleneck")
DEFAULT_STAGES: list[dict[str, Any]] = [
    {"width": [16, 24, 32], "stride": 2},
    {"width": [32, 48, 64], "stride": 2},
    {"width": [48, 64, 96], "stride": 2},
]
DEFAULT_BLOCK: dict[str, list[Any]] = {
    "op": list(DETECTOR_OPS),
    "depth": [1, 2, 3],
    "kernel": [3, 5],
    "bottleneck": [0.5, 1.0],
}
_K1KX = ("k1kx", "k1kx_rep")


def _check_values(what: str, dim: Dimension, ok: Any, allowed: str) -> Dimension:
    bad = [v for v in dim.values() if not ok(v)]
    if bad:
        raise SpaceError(f"detector {what}: {bad[0]!r} is not allowed; use {allowed}")
    return dim


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


class DetectorSpace(SearchSpace):
    """Backbone stages + FPN-lite neck + CenterNet head, searched together (registered as ``detector``).

    Args:
        stages: per stage ``{"width": [...], "stride": 1 or 2}`` (two or three stages); the first
            stage's total stride (2 × its stride) is the stride of the map the head decodes.
        block: choices shared by every stage: ``op`` (from :data:`DETECTOR_OPS`), ``depth``,
            ``kernel`` (odd), ``bottleneck`` (k1kx bottleneck as a fraction of the width).
        scales: how many backbone stages the neck fuses (each a choice from 2 up to
            ``len(stages)``); the stages beyond it are not built.
        stem: stem channel choices.
        neck_width, neck_depth: choices of the neck's channels and 3×3 layers after the fusion.
        head_width, head_depth: choices of the head branches' hidden channels and layers.
        act: activation of every block (``relu`` is what CPUs and INT8 like).
        constraints, max_params, input_shape, num_classes: as for every space.

    Example:
        >>> import numpy as np
        >>> space = DetectorSpace().bind((3, 64, 64), 3)
        >>> arch = space.sample(np.random.default_rng(0))
        >>> model = arch.build()
        >>> model.stride
        4
    """

    name = "detector"
    task_kinds = ("detection",)

    def __init__(
        self,
        *,
        stages: Sequence[Mapping[str, Any]] | None = None,
        block: Mapping[str, Any] | None = None,
        scales: Sequence[int] | Dimension | None = None,
        stem: Sequence[int] | Dimension = (8, 16),
        neck_width: Sequence[int] | Dimension = (16, 32, 48),
        neck_depth: Sequence[int] | Dimension = (0, 1, 2),
        head_width: Sequence[int] | Dimension = (16, 32),
        head_depth: Sequence[int] | Dimension = (1, 2),
        act: str = "relu",
        constraints: Sequence[Constraint] = (),
        max_params: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        stage_list = [dict(s) for s in (stages if stages is not None else DEFAULT_STAGES)]
        if not 2 <= len(stage_list) <= 3:
            raise SpaceError(f"detector needs 2 or 3 stages, got {len(stage_list)}")
        for i, st in enumerate(stage_list):
            if set(st) - {"width", "stride"} or "width" not in st:
                raise SpaceError(f"detector stage {i} must be {{width: [...], stride: 1 or 2}}, got {st!r}")
            st.setdefault("stride", 2)
            if st["stride"] not in (1, 2) or isinstance(st["stride"], bool):
                raise SpaceError(f"detector stage {i} stride must be 1 or 2, got {st['stride']!r}")
            st["width"] = list(st["width"]) if isinstance(st["width"], list | tuple) else st["width"]
        opts = {**DEFAULT_BLOCK, **dict(block or {})}
        unknown = sorted(set(opts) - {"op", "depth", "kernel", "bottleneck"})
        if unknown:
            raise SpaceError(f"detector block has no setting {unknown}; valid: op, depth, kernel, bottleneck")
        self.block_dims = {
            "op": _check_values(
                "block.op", as_dimension(opts["op"], what="detector block.op"),
                lambda v: v in DETECTOR_OPS, f"one of {list(DETECTOR_OPS)}",
            ),
            "depth": _check_values(
                "block.depth", as_dimension(opts["depth"], what="detector block.depth"),
                _positive_int, "integers >= 1",
            ),
            "kernel": _check_values(
                "block.kernel", as_dimension(opts["kernel"], what="detector block.kernel"),
                lambda v: _positive_int(v) and v % 2 == 1, "odd integers >= 1",
            ),
            "bottleneck": _check_values(
                "block.bottleneck", as_dimension(opts["bottleneck"], what="detector block.bottleneck"),
                lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 4,
                "numbers in (0, 4]",
            ),
        }  # fmt: skip
        scales_value = scales if scales is not None else list(range(2, len(stage_list) + 1))
        self.scales_dim = _check_values(
            "scales", as_dimension(scales_value, what="detector scales"),
            lambda v: _positive_int(v) and 2 <= v <= len(stage_list), f"integers in 2..{len(stage_list)}",
        )  # fmt: skip
        small: dict[str, Dimension] = {}
        for key, value, low in (
            ("stem", stem, 1),
            ("neck.width", neck_width, 1),
            ("neck.depth", neck_depth, 0),
            ("head.width", head_width, 1),
            ("head.depth", head_depth, 1),
        ):
            small[key] = _check_values(
                key, as_dimension(value, what=f"detector {key}"),
                lambda v, low=low: isinstance(v, int) and not isinstance(v, bool) and v >= low,
                f"integers >= {low}",
            )  # fmt: skip
        if act not in ACTIVATION_MODULES:
            raise SpaceError(f"detector act must be one of {sorted(ACTIVATION_MODULES)}, got {act!r}")
        self.stages = stage_list
        self.small_dims = small
        self.act = act
        self.max_params = max_params
        dims: dict[str, Dimension] = {"scales": self.scales_dim, "stem": small["stem"]}
        for s, st in enumerate(stage_list):
            dims[f"stage{s}.op"] = self.block_dims["op"]
            dims[f"stage{s}.width"] = as_dimension(st["width"], what=f"detector stage {s} width")
            _check_values(f"stage {s} width", dims[f"stage{s}.width"], _positive_int, "integers >= 1")
            for key in ("depth", "kernel", "bottleneck"):
                dims[f"stage{s}.{key}"] = self.block_dims[key]
        for key in ("neck.width", "neck.depth", "head.width", "head.depth"):
            dims[key] = small[key]
        cons = list(constraints)
        if max_params is not None:
            cons.append(MaxParams(max_params))
        super().__init__(dims, constraints=cons, input_shape=input_shape, num_classes=num_classes)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        if not name.startswith("stage"):
            return True
        stage, _, key = name.partition(".")
        if int(stage[5:]) >= params["scales"]:
            return False
        return key != "bottleneck" or params[f"{stage}.op"] in _K1KX

    def options(self) -> dict[str, Any]:
        return {
            "stages": [dict(s) for s in self.stages],
            "block": {k: d.to_dict() for k, d in self.block_dims.items()},
            "scales": self.scales_dim.to_dict(),
            **{k.replace(".", "_"): d.to_dict() for k, d in self.small_dims.items()},
            "act": self.act,
        }

    def plan(self, params: Mapping[str, Any], width: float = 1.0) -> dict[str, Any]:
        """The realised network as plain data (what :func:`nasforge.nn.build_detector` builds).

        Returns:
            ``{"stem": C, "stages": [{"op", "width", "depth", "kernel", "bottleneck", "stride"}, ...],
            "neck": {"width", "depth"}, "head": {"width", "depth"}, "act": ...}``; channel counts
            are multiplied by ``width`` (rounded, at least 1).
        """
        factor = check_width(width)

        def scaled(c: Any) -> int:
            return max(1, round(int(c) * factor))

        stages = []
        for s in range(int(params["scales"])):
            op = params[f"stage{s}.op"]
            stages.append(
                {
                    "op": op,
                    "width": scaled(params[f"stage{s}.width"]),
                    "depth": int(params[f"stage{s}.depth"]),
                    "kernel": int(params[f"stage{s}.kernel"]),
                    "bottleneck": float(params[f"stage{s}.bottleneck"]) if op in _K1KX else None,
                    "stride": int(self.stages[s]["stride"]),
                }
            )
        return {
            "stem": scaled(params["stem"]),
            "stages": stages,
            "neck": {"width": scaled(params["neck.width"]), "depth": int(params["neck.depth"])},
            "head": {"width": scaled(params["head.width"]), "depth": int(params["head.depth"])},
            "act": self.act,
        }

    def describe(self, arch: Architecture) -> str:
        """``stem16 | k1kx5x32*2/2 > conv3x64/2 | fpn32x1 | head32x2``: stages, neck and head."""
        plan = self.plan(arch.params)
        stages = []
        for st in plan["stages"]:
            s = f"{st['op']}{st['kernel']}x{st['width']}*{st['depth']}"
            s += f"b{st['bottleneck']:g}" if st["bottleneck"] is not None else ""
            stages.append(s + ("/2" if st["stride"] == 2 else ""))
        neck, head = plan["neck"], plan["head"]
        return (
            f"stem{plan['stem']} | {' > '.join(stages)} | fpn{neck['width']}x{neck['depth']} "
            f"| head{head['width']}x{head['depth']}"
        )
