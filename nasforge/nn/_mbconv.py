"""The MBConv network of :class:`nasforge.space.MBConvSpace` (MobileNetV3-style inverted residuals)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasforge.nn._layers import make_activation

__all__ = ["MBConvBlock", "MBConvNet", "SqueezeExcite"]

Device = torch.device | str | None


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool -> 1x1 conv (channels / 4) -> ReLU -> 1x1 conv -> hard sigmoid."""

    def __init__(self, channels: int, *, device: Device = None) -> None:
        super().__init__()
        hidden = max(1, channels // 4)
        self.reduce = nn.Conv2d(channels, hidden, 1, device=device)
        self.expand = nn.Conv2d(hidden, channels, 1, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.mean(x, dim=(2, 3), keepdim=True)
        s = self.expand(torch.relu(self.reduce(s)))
        return x * nn.functional.hardsigmoid(s)


class MBConvBlock(nn.Module):
    """Expand 1x1 (ratio > 1) -> depthwise kxk (stride) -> SE -> project 1x1; residual if shapes match."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        kernel: int,
        expand: int,
        stride: int,
        se: bool,
        act: str,
        device: Device = None,
    ) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expand != 1:
            layers["expand"] = nn.Conv2d(c_in, hidden, 1, bias=False, device=device)
            layers["expand_bn"] = nn.BatchNorm2d(hidden, device=device)
            layers["expand_act"] = make_activation(act)
        layers["depthwise"] = nn.Conv2d(
            hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False, device=device
        )
        layers["depthwise_bn"] = nn.BatchNorm2d(hidden, device=device)
        layers["depthwise_act"] = make_activation(act)
        if se:
            layers["se"] = SqueezeExcite(hidden, device=device)
        layers["project"] = nn.Conv2d(hidden, c_out, 1, bias=False, device=device)
        layers["project_bn"] = nn.BatchNorm2d(c_out, device=device)
        self.body = nn.Sequential(layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return y + x if self.residual else y


class MBConvNet(nn.Module):
    """Stem 3x3 conv -> MBConv blocks -> 1x1 conv (head channels) -> global average pool -> linear."""

    def __init__(
        self,
        blocks: Sequence[Mapping[str, Any]],
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        stem: int = 16,
        head: int = 128,
        device: Device = None,
    ) -> None:
        super().__init__()
        self.blocks_spec = [dict(b) for b in blocks]
        self.input_shape = input_shape
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], stem, 3, 1, 1, bias=False, device=device),
            nn.BatchNorm2d(stem, device=device),
            nn.Hardswish(),
        )
        layers = []
        c = stem
        for b in self.blocks_spec:
            layers.append(
                MBConvBlock(
                    c,
                    int(b["out"]),
                    kernel=int(b["kernel"]),
                    expand=int(b["expand"]),
                    stride=int(b["stride"]),
                    se=bool(b["se"]),
                    act=str(b["act"]),
                    device=device,
                )
            )
            c = int(b["out"])
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(c, head, 1, bias=False, device=device),
            nn.BatchNorm2d(head, device=device),
            nn.Hardswish(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.features(self.stem(x)))
        out: torch.Tensor = self.classifier(torch.flatten(self.pool(x), 1))
        return out
