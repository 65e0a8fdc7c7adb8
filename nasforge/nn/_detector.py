"""Builder of the detector space: stem → backbone stages → FPN-lite neck → CenterNet head.

The architecture arrives as the plain-data plan of :meth:`nasforge.space.DetectorSpace.plan`; see
that module for what each part is. :func:`build_detector` returns a
:class:`nasforge.detect.CenterNet` whose ``backbone`` is a :class:`DetectorFeatures` (backbone and
neck: images to one fused map at the first stage's stride).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn._blocks import ConvBN, K1KXBlock, RepVGGBlock
from nasforge.nn._layers import make_activation
from nasforge.nn._mbconv import MBConvBlock

__all__ = ["DetectorFeatures", "build_detector", "make_block"]

Device = torch.device | str | None
MBCONV_EXPAND = 3


class _ConvBNAct(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, act: str, device: Device) -> None:
        super().__init__(
            OrderedDict(conv=ConvBN(c_in, c_out, kernel, stride, device=device), act=make_activation(act))
        )


def make_block(
    op: str,
    c_in: int,
    c_out: int,
    *,
    kernel: int,
    stride: int,
    bottleneck: float | None,
    act: str,
    device: Device = None,
) -> nn.Module:
    """One backbone block of the detector space (see :data:`nasforge.space._detector.DETECTOR_OPS`)."""
    if op == "conv":
        return _ConvBNAct(c_in, c_out, kernel, stride, act, device)
    if op == "mbconv":
        return MBConvBlock(
            c_in, c_out, kernel=kernel, expand=MBCONV_EXPAND, stride=stride, se=False, act=act, device=device
        )
    if op in ("k1kx", "k1kx_rep"):
        width = max(1, round(c_out * (bottleneck if bottleneck is not None else 0.5)))
        return K1KXBlock(
            c_in, c_out, kernel, stride, bottleneck=width, act=act, rep=op == "k1kx_rep", device=device
        )
    if op in ("repvgg", "qarep"):
        variant = "qarep" if op == "qarep" else "repvgg"
        return RepVGGBlock(c_in, c_out, kernel, stride, act=act, variant=variant, device=device)
    raise ConfigError(f"unknown detector op {op!r}")


class DetectorFeatures(nn.Module):
    """Stem, backbone stages and the FPN-lite neck: images ``(N, C, H, W)`` to one fused map.

    Attributes:
        plan: the plan it was built from.
        in_channels: image channels.
        stride: input pixels per cell of the output map (the first stage's total stride).
        out_channels: channels of the output map (the neck's width).
    """

    def __init__(self, plan: Mapping[str, Any], in_channels: int, *, device: Device = None) -> None:
        super().__init__()
        self.plan = dict(plan)
        self.in_channels = in_channels
        act = str(plan["act"])
        stem = int(plan["stem"])
        self.stem = _ConvBNAct(in_channels, stem, 3, 2, act, device)
        self.stages = nn.ModuleList()
        c = stem
        widths = []
        for st in plan["stages"]:
            blocks = []
            for b in range(int(st["depth"])):
                blocks.append(
                    make_block(
                        str(st["op"]),
                        c,
                        int(st["width"]),
                        kernel=int(st["kernel"]),
                        stride=int(st["stride"]) if b == 0 else 1,
                        bottleneck=st["bottleneck"],
                        act=act,
                        device=device,
                    )
                )
                c = int(st["width"])
            self.stages.append(nn.Sequential(*blocks))
            widths.append(c)
        neck_width = int(plan["neck"]["width"])
        self.laterals = nn.ModuleList(ConvBN(w, neck_width, 1, device=device) for w in widths)
        self.fuse = nn.Sequential(
            *(
                _ConvBNAct(neck_width, neck_width, 3, 1, act, device)
                for _ in range(int(plan["neck"]["depth"]))
            )
        )
        self.stride = 2 * int(plan["stages"][0]["stride"])
        self.out_channels = neck_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        y = self.laterals[-1](maps[-1])
        for lateral, feature in zip(reversed(self.laterals[:-1]), reversed(maps[:-1]), strict=True):
            y = lateral(feature) + F.interpolate(y, size=feature.shape[-2:], mode="nearest")
        return self.fuse(y)


def build_detector(
    plan: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    *,
    device: Device = None,
) -> nn.Module:
    """Build the CenterNet of a detector-space plan for ``input_shape`` ``(C, H, W)`` and ``num_classes``.

    Returns:
        A :class:`nasforge.detect.CenterNet`; ``model.backbone`` is the :class:`DetectorFeatures`.

    Example:
        >>> import numpy as np
        >>> from nasforge.space import DetectorSpace
        >>> space = DetectorSpace()
        >>> plan = space.plan(space.sample(np.random.default_rng(0)).params)
        >>> model = build_detector(plan, (3, 64, 64), 3)
        >>> model(torch.zeros(1, 3, 64, 64))["heatmap"].shape
        torch.Size([1, 3, 16, 16])
    """
    from nasforge.detect._centernet import CenterNet  # detect builds its head from nn's blocks

    if len(input_shape) != 3 or isinstance(num_classes, bool) or int(num_classes) < 1:
        raise ConfigError(
            f"need input_shape (C, H, W) and num_classes >= 1, got {input_shape}, {num_classes}"
        )
    features = DetectorFeatures(plan, int(input_shape[0]), device=device)
    return CenterNet(
        features,
        features.out_channels,
        int(num_classes),
        stride=features.stride,
        head_width=int(plan["head"]["width"]),
        head_depth=int(plan["head"]["depth"]),
        act=str(plan["act"]),
        device=device,
    )
