"""Weight-sharing supernet of the chain CNN space (single path, Once-for-All style slicing).

Weights are shared by *slot*: the ``j``-th layer with weights (convolution or separable
convolution) of an architecture uses slot ``j``, wherever pooling layers put it in the chain. Every
slot owns one set of the largest weights its choices can need: a convolution kernel
``(Cmax, Cmax, Kmax, Kmax)``, a depthwise kernel and a pointwise matrix for the separable
convolution, a 1x1 projection for residual shortcuts, and batch-norm layers of ``Cmax`` channels.
A layer runs on its slice: the first ``c_out`` output and ``c_in`` input channels and the centred
``k x k`` window of the kernel (Cai et al. 2020, "Once-for-All", with plain centre cropping instead
of kernel transformation matrices). Pooling has no weights and keeps the meaning of its input
channels, so with slots the weights of slot ``j`` always read the output of slot ``j - 1`` (or the
image, for slot 0). Sharing by position instead made a layer's weights read the raw image in one
architecture and learned features in the next, and ranked worse (``docs/benchmarks.md``). The head
is a linear layer on the first ``c`` features, one per number of weighted layers (0 to the maximum
depth), since the last weighted slot decides what the features mean. So any architecture of the
space runs with the shared weights, with exactly the layer plan
:func:`~nasforge.nn.plan_chain_cnn` gives it, and :meth:`ChainSuperNet.extract` builds the
stand-alone :class:`~nasforge.nn.ChainNet` with those weights copied (same outputs).

Batch-norm statistics are sliced too and depend on the path: recalibrate them per architecture
(:func:`~nasforge.nn._supernet.recalibrate_bn` works on this network, whose layers honour the
batch-norm modules' ``momentum`` and ``num_batches_tracked`` like ``nn.BatchNorm2d`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ConfigError
from nasforge.nn._chain import ChainNet, LayerPlan, build_chain_cnn, plan_chain_cnn
from nasforge.nn._layers import CenterCrop, make_activation
from nasforge.space import ChainCNN, SearchSpace

__all__ = ["ChainSuperNet"]

WEIGHTED_OPS = ("conv", "sepconv")


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, c: int) -> torch.Tensor:
    """``bn`` on the first ``c`` channels, updating the sliced running statistics in place."""
    factor = 0.0
    if bn.training:
        assert bn.num_batches_tracked is not None
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    assert bn.running_mean is not None and bn.running_var is not None
    return F.batch_norm(
        x,
        bn.running_mean[:c],
        bn.running_var[:c],
        bn.weight[:c],
        bn.bias[:c],
        bn.training,
        factor,
        bn.eps,
    )


def _crop(w: torch.Tensor, k: int) -> torch.Tensor:
    m = (w.shape[-1] - k) // 2
    return w[..., m : m + k, m : m + k]


class _SharedLayer(nn.Module):
    def __init__(self, c_max: int, k_max: int) -> None:
        super().__init__()
        self.conv = nn.Parameter(torch.empty(c_max, c_max, k_max, k_max))
        self.depthwise = nn.Parameter(torch.empty(c_max, 1, k_max, k_max))
        self.pointwise = nn.Parameter(torch.empty(c_max, c_max, 1, 1))
        self.projection = nn.Parameter(torch.empty(c_max, c_max, 1, 1))
        self.conv_bn = nn.BatchNorm2d(c_max)
        self.sep_bn = nn.BatchNorm2d(c_max)
        self.proj_bn = nn.BatchNorm2d(c_max)
        for w in (self.conv, self.depthwise, self.pointwise, self.projection):
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, layer: LayerPlan) -> torch.Tensor:
        op, k, s = layer["op"], layer["kernel"], layer["stride"]
        pad = k // 2 if layer["padding"] == "same" else 0
        if op == "maxpool":
            return F.max_pool2d(x, k, s, pad)
        if op == "avgpool":
            return F.avg_pool2d(x, k, s, pad, count_include_pad=False)
        ci, co = layer["in_channels"], layer["out_channels"]
        if op == "conv":
            y = F.conv2d(x, _crop(self.conv[:co, :ci], k), stride=s, padding=pad)
            y = _bn(y, self.conv_bn, co)
        else:
            y = F.conv2d(x, _crop(self.depthwise[:ci], k), stride=s, padding=pad, groups=ci)
            y = F.conv2d(y, self.pointwise[:co, :ci])
            y = _bn(y, self.sep_bn, co)
        assert layer["act"] is not None
        y = make_activation(layer["act"])(y)
        if layer["shortcut"] == "identity":
            return y + x
        if layer["shortcut"] == "projection":
            crop = 0 if layer["padding"] == "same" else k // 2
            short = CenterCrop(crop)(x) if crop else x
            short = _bn(F.conv2d(short, self.projection[:co, :ci], stride=s), self.proj_bn, co)
            return y + short
        return y


class ChainSuperNet(nn.Module):
    """Shared weights for every architecture of a :class:`~nasforge.space.ChainCNN` space.

    Args:
        space: the chain CNN space (its depth, filter and kernel choices size the weights).
        input_shape: ``(channels, height, width)`` of one input.
        num_classes: number of output logits.

    Example:
        >>> import numpy as np
        >>> from nasforge.space import ChainCNN
        >>> space = ChainCNN(depth=(2, 3), layer={"filters": [8, 16]})
        >>> net = ChainSuperNet(space, (1, 12, 12), 4)
        >>> arch = space.sample(np.random.default_rng(0))
        >>> net(torch.zeros(2, 1, 12, 12), path=arch.params).shape
        torch.Size([2, 4])
    """

    def __init__(self, space: ChainCNN, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        if not isinstance(space, ChainCNN):
            got = space.name if isinstance(space, SearchSpace) else space
            raise ConfigError(f"ChainSuperNet needs a chain_cnn space, got {got!r}")
        c_in = int(input_shape[0])
        filters = [int(f) for f in space.layer_dims["filters"].values()]
        kernels = [int(k) for k in space.layer_dims["kernel"].values()]
        self.input_shape = (c_in, int(input_shape[1]), int(input_shape[2]))
        self.num_classes = int(num_classes)
        self.c_max = max([*filters, c_in])
        self.k_max = max(kernels)
        self.max_depth = max(int(d) for d in space.depth_dim.values())
        self.layers = nn.ModuleList(_SharedLayer(self.c_max, self.k_max) for _ in range(self.max_depth))
        self.heads = nn.ModuleList(nn.Linear(self.c_max, self.num_classes) for _ in range(self.max_depth + 1))

    def plan(self, path: Mapping[str, Any]) -> list[LayerPlan]:
        return plan_chain_cnn(path, self.input_shape)

    @staticmethod
    def slots(plan: Sequence[LayerPlan]) -> list[int]:
        """The weight slot of every layer of ``plan``: how many weighted layers come before it."""
        out, j = [], 0
        for layer in plan:
            out.append(j)
            j += layer["op"] in WEIGHTED_OPS
        return out

    def forward(self, x: torch.Tensor, *, path: Mapping[str, Any]) -> torch.Tensor:
        """Logits of the architecture ``path`` (its parameter mapping) with the shared weights."""
        plan = self.plan(path)
        slots = self.slots(plan)
        for layer, slot in zip(plan, slots, strict=True):
            x = self.layers[slot](x, layer)
        c = plan[-1]["out_channels"] if plan else self.input_shape[0]
        head = self._head(plan)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        out: torch.Tensor = F.linear(x, head.weight[:, :c], head.bias)
        return out

    def _head(self, plan: Sequence[LayerPlan]) -> nn.Linear:
        head: nn.Linear = self.heads[sum(layer["op"] in WEIGHTED_OPS for layer in plan)]  # type: ignore[assignment]
        return head

    def extract(self, path: Mapping[str, Any]) -> ChainNet:
        """The stand-alone network of ``path`` with this supernet's weights (copied)."""
        with torch.random.fork_rng(devices=[]):
            net = build_chain_cnn(path, self.input_shape, self.num_classes)
        state: dict[str, torch.Tensor] = {}

        def bn(prefix: str, shared: nn.BatchNorm2d, c: int) -> None:
            assert shared.running_mean is not None and shared.running_var is not None
            state[f"{prefix}.weight"] = shared.weight[:c]
            state[f"{prefix}.bias"] = shared.bias[:c]
            state[f"{prefix}.running_mean"] = shared.running_mean[:c]
            state[f"{prefix}.running_var"] = shared.running_var[:c]
            assert shared.num_batches_tracked is not None
            state[f"{prefix}.num_batches_tracked"] = shared.num_batches_tracked

        for layer, slot in zip(net.plan, self.slots(net.plan), strict=True):
            i, op, k = layer["index"], layer["op"], layer["kernel"]
            if op not in WEIGHTED_OPS:
                continue
            shared: _SharedLayer = self.layers[slot]  # type: ignore[assignment]
            ci, co = layer["in_channels"], layer["out_channels"]
            body = f"features.{i}" + (".body" if layer["shortcut"] else "")
            if op == "conv":
                state[f"{body}.conv.weight"] = _crop(shared.conv[:co, :ci], k)
                bn(f"{body}.bn", shared.conv_bn, co)
            else:
                state[f"{body}.depthwise.weight"] = _crop(shared.depthwise[:ci], k)
                state[f"{body}.pointwise.weight"] = shared.pointwise[:co, :ci]
                bn(f"{body}.bn", shared.sep_bn, co)
            if layer["shortcut"] == "projection":
                state[f"features.{i}.shortcut.conv.weight"] = shared.projection[:co, :ci]
                bn(f"features.{i}.shortcut.bn", shared.proj_bn, co)
        c = net.classifier.in_features
        head = self._head(net.plan)
        state["classifier.weight"] = head.weight[:, :c]
        state["classifier.bias"] = head.bias
        net.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
        return net
