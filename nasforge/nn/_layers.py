"""Building blocks shared by the nasforge builders: activations, conv blocks and a residual wrapper.

The blocks are small :class:`torch.nn.Sequential` subclasses with named children (``conv``, ``bn``,
``act``), so state-dict keys read well and hooks can target a part of a block. Every block takes a
``device`` argument that is passed to the parameter factories; ``device="meta"`` builds a block
without allocating memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from nasforge.errors import SpaceError
from nasforge.registry import suggest
from nasforge.space._vocab import ACTIVATION_MODULES

__all__ = [
    "ACTIVATIONS",
    "CenterCrop",
    "ConvBNAct",
    "Residual",
    "SepConvBNAct",
    "make_activation",
    "projection_shortcut",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    name: getattr(nn, module) for name, module in ACTIVATION_MODULES.items()
}
"""Activation names a search space may use (:data:`nasforge.space._vocab.ACTIVATION_MODULES`), mapped to
factories of fresh (not in-place) modules."""


def make_activation(name: str) -> nn.Module:
    """Return a new activation module by name.

    Args:
        name: a key of :data:`ACTIVATIONS`, e.g. ``"relu"`` or ``"hardswish"``.

    Returns:
        A fresh module; activations are never shared between layers.

    Raises:
        SpaceError: if ``name`` is not a known activation; the message lists the valid names.

    Example:
        >>> make_activation("relu6")
        ReLU6()
    """
    factory = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if factory is None:
        valid = sorted(ACTIVATIONS)
        hint = suggest(name, valid) if isinstance(name, str) else ""
        raise SpaceError(f"unknown activation {name!r}.{hint} Valid activations: {', '.join(valid)}.")
    return factory()


class ConvBNAct(nn.Sequential):
    """``Conv2d`` (no bias) → ``BatchNorm2d`` → activation.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd kernel size.
        stride: convolution stride.
        padding: zero padding on each side (``kernel // 2`` for "same", 0 for "valid").
        act: an :data:`ACTIVATIONS` name.
        device: where to create the parameters (``"meta"`` allocates nothing).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        padding: int,
        act: str,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=False, device=device),
                bn=nn.BatchNorm2d(out_channels, device=device),
                act=make_activation(act),
            )
        )


class SepConvBNAct(nn.Sequential):
    """MobileNet-style separable conv: depthwise ``Conv2d`` → pointwise 1×1 ``Conv2d`` → BN → activation.

    Both convolutions have no bias; the depthwise one carries the kernel, stride and padding.

    Args:
        in_channels: input channels (also the depthwise groups).
        out_channels: output channels of the pointwise conv.
        kernel: odd depthwise kernel size.
        stride: depthwise stride.
        padding: depthwise zero padding on each side.
        act: an :data:`ACTIVATIONS` name.
        device: where to create the parameters (``"meta"`` allocates nothing).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        padding: int,
        act: str,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(
            OrderedDict(
                depthwise=nn.Conv2d(
                    in_channels,
                    in_channels,
                    kernel,
                    stride,
                    padding,
                    groups=in_channels,
                    bias=False,
                    device=device,
                ),
                pointwise=nn.Conv2d(in_channels, out_channels, 1, bias=False, device=device),
                bn=nn.BatchNorm2d(out_channels, device=device),
                act=make_activation(act),
            )
        )


class CenterCrop(nn.Module):
    """Drop ``margin`` pixels from each side of the two spatial dimensions.

    A "valid" convolution with kernel ``k`` centres its windows on the input cropped by ``k // 2``;
    cropping the shortcut the same way keeps both branches aligned pixel for pixel.
    """

    def __init__(self, margin: int) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.margin
        if m == 0:
            return x
        return x[..., m : x.shape[-2] - m, m : x.shape[-1] - m]

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


def projection_shortcut(
    in_channels: int,
    out_channels: int,
    stride: int,
    crop: int = 0,
    *,
    device: torch.device | str | None = None,
) -> nn.Sequential:
    """ResNet "option B" shortcut: optional centre crop → 1×1 ``Conv2d`` (no bias, ``stride``) → BN.

    Args:
        in_channels: input channels.
        out_channels: output channels (the body's).
        stride: the body's stride.
        crop: pixels to drop on each side first; ``kernel // 2`` when the body uses "valid" padding,
            so that the shortcut's spatial size equals the body's.
        device: where to create the parameters.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if crop:
        layers["crop"] = CenterCrop(crop)
    layers["conv"] = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False, device=device)
    layers["bn"] = nn.BatchNorm2d(out_channels, device=device)
    return nn.Sequential(layers)


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; the shortcut defaults to the identity.

    Args:
        body: the main branch.
        shortcut: a module giving the body's output shape, or ``None`` for the identity.
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)
