"""Searchable blocks from detection backbones, usable in any CNN: DAMO-YOLO's ``k1kx`` and RepVGG / QARepVGG.

- :class:`K1KXBlock` is the residual block of DAMO-YOLO's TinyNAS backbones: a 1×1 conv (to the
  bottleneck width) → BN → act → k×k conv (stride) → BN, plus the input (identity, or a 1×1
  conv + BN when the width changes) at stride 1 — no shortcut at stride 2 — then act.
- :class:`RepVGGBlock` trains as the sum of a k×k conv + BN, a 1×1 conv + BN and (same shape) a BN
  of the input, and :meth:`RepVGGBlock.fuse` folds them into one k×k conv with bias for inference
  and export (Ding et al., 2021). ``variant="qarep"`` is QARepVGG (Chu et al., 2022), friendlier
  to INT8: the 1×1 and identity branches carry no BN and one BN follows the sum.

Call :func:`reparameterize` on a trained model before exporting it; in eval mode the fused model
computes the same function (up to float rounding). The blocks are not yet options of the chain CNN
space: adding ops there would change the space's op list that its tests and supernet rely on.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.nn._layers import make_activation

__all__ = ["ConvBN", "K1KXBlock", "RepVGGBlock", "reparameterize"]

Device = torch.device | str | None
_VARIANTS = ("repvgg", "qarep")


def _check_block(in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd, got {kernel=}")
    if stride not in (1, 2) or isinstance(stride, bool):
        raise ValueError(f"stride must be 1 or 2, got {stride=}")


class ConvBN(nn.Sequential):
    """``Conv2d`` (no bias, "same" padding) → ``BatchNorm2d``, with no activation."""

    conv: nn.Conv2d
    bn: nn.BatchNorm2d

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, *, device: Device = None
    ) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(
                    in_channels, out_channels, kernel, stride, kernel // 2, bias=False, device=device
                ),
                bn=nn.BatchNorm2d(out_channels, device=device),
            )
        )


def _fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of ``bn(conv(x))`` as one conv (BN in eval mode, i.e. with running statistics)."""
    assert bn.running_var is not None and bn.running_mean is not None  # track_running_stats is on
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * scale[:, None, None, None], bn.bias + (b - bn.running_mean) * scale


class K1KXBlock(nn.Module):
    """DAMO-YOLO's ``k1kx`` residual bottleneck (``ResConvBlock`` with ``block_type="k1kx"``).

    ``act(conv_kxk(act(conv_1x1(x))) + shortcut(x))`` at stride 1 and ``act(conv_kxk(act(conv_1x1(x))))``
    at stride 2; the shortcut is the identity when ``in_channels == out_channels``, else 1×1 conv + BN.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd size of the second conv (the first is 1×1).
        stride: 1 or 2, applied by the k×k conv.
        bottleneck: channels between the two convs; default ``max(1, out_channels // 2)``.
        act: an :data:`~nasforge.nn.ACTIVATIONS` name (DAMO-YOLO uses ``"silu"``, ``"relu"`` on CPUs).
        rep: make the k×k conv a :class:`RepVGGBlock` without activation (DAMO-YOLO's ``reparam``).
        device: where to create the parameters.

    Example:
        >>> block = K1KXBlock(16, 32, kernel=5, stride=2)
        >>> block(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        bottleneck: int | None = None,
        act: str = "silu",
        rep: bool = False,
        device: Device = None,
    ) -> None:
        super().__init__()
        _check_block(in_channels, out_channels, kernel, stride)
        width = max(1, out_channels // 2) if bottleneck is None else bottleneck
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"bottleneck must be an int >= 1, got {bottleneck=}")
        self.stride = stride
        self.reduce = ConvBN(in_channels, width, 1, device=device)
        self.act1 = make_activation(act)
        self.conv: nn.Module = (
            RepVGGBlock(width, out_channels, kernel, stride, act=None, device=device)
            if rep
            else ConvBN(width, out_channels, kernel, stride, device=device)
        )
        self.shortcut: nn.Module | None = None
        if stride == 1:
            self.shortcut = (
                nn.Identity()
                if in_channels == out_channels
                else ConvBN(in_channels, out_channels, 1, device=device)
            )
        self.act2 = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.act1(self.reduce(x)))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return self.act2(y)


class RepVGGBlock(nn.Module):
    """A re-parameterisable conv: several branches while training, one k×k conv after :meth:`fuse`.

    ``variant="repvgg"``: ``act(BN(conv_kxk(x)) + BN(conv_1x1(x)) + BN(x))``;
    ``variant="qarep"``: ``act(BN(BN(conv_kxk(x)) + conv_1x1(x) + x))``. The identity branch exists only
    when ``in_channels == out_channels`` and ``stride == 1``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel: odd kernel size of the main branch (3 in RepVGG).
        stride: 1 or 2.
        act: an :data:`~nasforge.nn.ACTIVATIONS` name, or None for no activation.
        variant: ``"repvgg"`` or ``"qarep"``.
        device: where to create the parameters.

    Attributes:
        fused: the single conv after :meth:`fuse`, else None.

    Example:
        >>> block = RepVGGBlock(8, 8).eval()
        >>> x = torch.randn(1, 8, 6, 6)
        >>> before = block(x)
        >>> torch.allclose(block.fuse()(x), before, atol=1e-5), block.fused is not None
        (True, True)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 3,
        stride: int = 1,
        *,
        act: str | None = "relu",
        variant: str = "repvgg",
        device: Device = None,
    ) -> None:
        super().__init__()
        _check_block(in_channels, out_channels, kernel, stride)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(_VARIANTS)}, got {variant=}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel, self.stride, self.variant = kernel, stride, variant
        self.dense: nn.Module | None = ConvBN(in_channels, out_channels, kernel, stride, device=device)
        qarep = variant == "qarep"
        self.one: nn.Module | None = (
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False, device=device)
            if qarep
            else ConvBN(in_channels, out_channels, 1, stride, device=device)
        )
        self.identity: nn.Module | None = None
        if in_channels == out_channels and stride == 1:
            self.identity = nn.Identity() if qarep else nn.BatchNorm2d(in_channels, device=device)
        self.post_bn: nn.BatchNorm2d | None = nn.BatchNorm2d(out_channels, device=device) if qarep else None
        self.act = make_activation(act) if act is not None else nn.Identity()
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.act(self.fused(x))
        assert self.dense is not None and self.one is not None  # present until fuse()
        y = self.dense(x) + self.one(x)
        if self.identity is not None:
            y = y + self.identity(x)
        if self.post_bn is not None:
            y = self.post_bn(y)
        return self.act(y)

    def _branch(self, branch: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """A branch as a k×k kernel and bias (BN folded with its running statistics)."""
        k, pad = self.kernel, self.kernel // 2
        device = next(self.parameters()).device
        zeros = torch.zeros(self.out_channels, device=device)
        if isinstance(branch, ConvBN):
            weight = F.pad(branch.conv.weight, [pad - branch.conv.kernel_size[0] // 2] * 4)
            return _fold_bn(weight, None, branch.bn)
        if isinstance(branch, nn.Conv2d):  # QARepVGG's 1×1 conv without BN
            return F.pad(branch.weight, [pad] * 4), zeros
        eye = torch.zeros(self.out_channels, self.in_channels, k, k, device=device)
        eye[torch.arange(self.out_channels), torch.arange(self.in_channels), pad, pad] = 1.0
        if isinstance(branch, nn.BatchNorm2d):
            return _fold_bn(eye, None, branch)
        return eye, zeros  # nn.Identity

    @torch.no_grad()
    def fuse(self) -> RepVGGBlock:
        """Fold every branch (and QARepVGG's post-BN) into one k×k conv with bias, in place; return self.

        Uses the BatchNorm running statistics, so the fused block equals the unfused block in eval
        mode. Fusing twice is a no-op. The branch modules are removed.
        """
        if self.fused is not None:
            return self
        branches = [b for b in (self.dense, self.one, self.identity) if b is not None]
        parts = [self._branch(b) for b in branches]
        weight = torch.stack([w for w, _ in parts]).sum(0)
        bias = torch.stack([b for _, b in parts]).sum(0)
        if self.post_bn is not None:
            weight, bias = _fold_bn(weight, bias, self.post_bn)
        conv = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel, self.stride, self.kernel // 2, bias=True,
            device=weight.device,
        )  # fmt: skip
        conv.weight.copy_(weight)
        assert conv.bias is not None
        conv.bias.copy_(bias)
        self.fused = conv
        self.dense = self.one = self.identity = self.post_bn = None
        return self

    def extra_repr(self) -> str:
        state = "fused" if self.fused is not None else "branches"
        return f"variant={self.variant}, kernel={self.kernel}, stride={self.stride}, {state}"


def reparameterize(model: nn.Module) -> nn.Module:
    """Fuse every :class:`RepVGGBlock` in ``model`` (in place) for inference or export; return ``model``.

    Example:
        >>> net = nn.Sequential(RepVGGBlock(3, 8), K1KXBlock(8, 8, rep=True)).eval()
        >>> x = torch.randn(2, 3, 8, 8)
        >>> before = net(x)
        >>> torch.allclose(reparameterize(net)(x), before, atol=1e-5)
        True
    """
    for module in model.modules():
        if isinstance(module, RepVGGBlock):
            module.fuse()
    return model
