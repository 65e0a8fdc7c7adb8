"""A data-free, closed-form backbone score after MAE-DET (Sun et al., ICML 2022) and DeepMAD (CVPR 2023).

The idea: a backbone's feature maps should carry as much information as possible. Model the
network at initialisation as a chain of convolutions with unit-variance Gaussian weights and drop
BatchNorm and activations; then a convolution with ``c`` input channels per group and a ``k×k``
kernel multiplies the standard deviation of its output by ``sqrt(c·k²)`` (the sum of ``c·k²``
independent unit-variance products), and the differential entropy of a Gaussian feature map of
``C`` channels grows with ``log C + log σ``. So, per backbone stage ``s`` whose output the detector
uses, with ``ℓ`` running over the convolutions on the main path up to the end of ``s``::

    H_s = log(C_s) + Σ_ℓ ½·log(c_ℓ · k_ℓ²)
    score = Σ_s w_s · H_s

No forward pass, no data, no weights: the score is a function of channel counts and kernel sizes
only, so it costs microseconds and is the same for every seed. Shortcut projections do not count
(they are not on the main path); a depthwise convolution has ``c = 1``; a RepVGG block counts as
its fused k×k convolution. The default stage weights follow DAMO-YOLO's TinyNAS multi-scale
setting (``[0, 0, 1, 1, 6]`` over five stages: 1 for each fused stage but the deepest, 6 for it).
TinyNAS adds no resolution term and neither does this; larger is "predicted better".

Mind what it measures: expressivity grows with depth and width without bound, so it ranks
architectures **at a similar budget** (MAE-DET maximises it under a FLOPs / parameter / latency
constraint). Use it with a constraint, or next to ``params`` / ``flops`` in a vote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from nasforge.nn._detector import MBCONV_EXPAND, DetectorFeatures

__all__ = ["DEEPEST_WEIGHT", "backbone_terms", "mae_det", "mae_det_score"]

DEEPEST_WEIGHT = 6.0
"""Weight of the deepest stage's entropy in the default stage weights (TinyNAS' ratio ``6``)."""


def _conv(c_in: int, kernel: int) -> float:
    return 0.5 * math.log(c_in * kernel * kernel)


def _block_terms(op: str, c_in: int, c_out: int, kernel: int, bottleneck: float | None) -> list[float]:
    """The ½·log(c·k²) terms of one detector-space block's main path."""
    if op in ("conv", "repvgg", "qarep"):
        return [_conv(c_in, kernel)]
    if op in ("k1kx", "k1kx_rep"):
        width = max(1, round(c_out * (bottleneck if bottleneck is not None else 0.5)))
        return [_conv(c_in, 1), _conv(width, kernel)]
    if op == "mbconv":  # expand 1×1, depthwise k×k (one input channel per group), project 1×1
        return [_conv(c_in, 1), _conv(1, kernel), _conv(c_in * MBCONV_EXPAND, 1)]
    raise ValueError(f"unknown detector op {op!r}")


def backbone_terms(plan: Mapping[str, Any], in_channels: int) -> list[tuple[float, int]]:
    """Per stage of a detector-space plan: (Σ ½·log(c·k²) up to the stage's end, the stage's channels).

    The stem (a 3×3 conv from the image channels) is the first term of every stage's sum.
    """
    total = _conv(in_channels, 3)
    c = int(plan["stem"])
    out = []
    for st in plan["stages"]:
        for _ in range(int(st["depth"])):
            for term in _block_terms(str(st["op"]), c, int(st["width"]), int(st["kernel"]), st["bottleneck"]):
                total += term
            c = int(st["width"])
        out.append((total, c))
    return out


def mae_det_score(
    plan: Mapping[str, Any], in_channels: int, *, weights: Sequence[float] | None = None
) -> float:
    """The MAE-DET score of a :meth:`DetectorSpace.plan <nasforge.space.DetectorSpace.plan>`.

    Args:
        plan: the realised architecture.
        in_channels: image channels.
        weights: one weight per backbone stage; default 1 for each but the deepest, which gets
            :data:`DEEPEST_WEIGHT`.

    Example:
        >>> # s0 = ½ log(3·9) + ½ log(8·9): the stem, then stage 0's conv
        >>> plan = {"stem": 8, "stages": [
        ...     {"op": "conv", "width": 16, "depth": 1, "kernel": 3, "bottleneck": None, "stride": 2},
        ...     {"op": "conv", "width": 32, "depth": 1, "kernel": 3, "bottleneck": None, "stride": 2}]}
        >>> round(mae_det_score(plan, 3), 4)  # log 16 + s0 + 6 (log 32 + s0 + ½ log(16·9))
        64.9802
    """
    stages = backbone_terms(plan, in_channels)
    if weights is None:
        weights = [1.0] * (len(stages) - 1) + [DEEPEST_WEIGHT]
    if len(weights) != len(stages):
        raise ValueError(f"weights need one value per stage ({len(stages)}), got {list(weights)}")
    return float(sum(w * (math.log(c) + s) for w, (s, c) in zip(weights, stages, strict=True)))


def _generic_score(model: nn.Module) -> float:
    """Any other network: one stage; every conv / linear layer outside a shortcut is on the main path."""
    total, last = 0.0, 0
    for name, module in model.named_modules():
        if "shortcut" in name or "downsample" in name:
            continue
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 0.5 * math.log(module.in_channels // module.groups * k)
            last = module.out_channels
        elif isinstance(module, nn.Linear) and last == 0:
            total += 0.5 * math.log(module.in_features)
            last = module.out_features
    return total + math.log(last) if last else float("-inf")


def mae_det(
    model: nn.Module, inputs: Tensor | None = None, targets: Tensor | None = None, *, seed: int = 0
) -> float:
    """The MAE-DET score of ``model`` (registered proxy ``mae_det``); the other arguments are unused.

    A network of the ``detector`` space is scored on its plan with :func:`mae_det_score` (stages
    fused by the neck, default weights). Any other network is read as one stage: every ``Conv2d``
    (and, before the first convolution, ``Linear``) layer whose name holds neither ``shortcut`` nor
    ``downsample`` counts, in registration order, and the last one's output channels are ``C``.
    That reading suits chains (chain CNN, MBConv, the detector backbones) better than cells with
    parallel paths, where it adds up every path.
    """
    # A duck-typed probe, on purpose: proxies score any nn.Module (a user's own network too), which
    # declares nothing; the detector space's network is recognised by what its backbone is.
    features = getattr(model, "backbone", None)
    if isinstance(features, DetectorFeatures):
        return mae_det_score(features.plan, features.in_channels)
    return _generic_score(model)
