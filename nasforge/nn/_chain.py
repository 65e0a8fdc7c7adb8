"""Builder for the chain CNN space: a plain stack of conv / separable-conv / pooling layers.

The architecture is a flat mapping of parameters (see :func:`build_chain_cnn`); the search space
that produces it lives in ``nasforge.space``. The builder first computes a *plan* (the realised
settings and the spatial size of every layer for the given input shape), then builds modules from
that plan, so any valid architecture runs on any input shape.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import torch
from torch import nn

from nasforge.errors import ConfigError, SpaceError
from nasforge.nn._layers import ACTIVATIONS, ConvBNAct, Residual, SepConvBNAct, projection_shortcut
from nasforge.registry import suggest
from nasforge.space._vocab import CHAIN_OPS

__all__ = ["CHAIN_OPS", "ChainNet", "LayerPlan", "build_chain_cnn", "plan_chain_cnn"]

_CONV_OPS = ("conv", "sepconv")
_PADDINGS = ("same", "valid")
_STRIDES = (1, 2)


class LayerPlan(TypedDict):
    """The realised settings of one layer (a plain dict at run time, JSON-friendly).

    ``kernel``, ``stride`` and ``padding`` are what the built layer uses, after adaptation to the
    input shape; ``adapted`` says in words what was changed from the architecture, and is empty
    when the layer was built as requested.
    """

    index: int
    op: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: str
    in_size: tuple[int, int]
    out_size: tuple[int, int]
    act: str | None
    skip: bool
    shortcut: str | None  # "identity", "projection", or None without a skip connection
    adapted: tuple[str, ...]


# -- validation -------------------------------------------------------------------------------------


def _get(params: Mapping[str, Any], key: str, why: str = "") -> Any:
    if key not in params:
        raise SpaceError(
            f"chain CNN architecture is missing parameter '{key}'{why}. "
            "Sample architectures from the chain_cnn space, or add the key."
        )
    return params[key]


def _get_int(params: Mapping[str, Any], key: str, why: str = "", *, odd: bool = False) -> int:
    value = _get(params, key, why)
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Integral)
        or value < 1
        or (odd and value % 2 == 0)
    ):
        kind = "an odd int >= 1" if odd else "an int >= 1"
        raise SpaceError(f"chain CNN parameter '{key}' must be {kind}, got {value!r}.")
    return int(value)


def _get_choice(params: Mapping[str, Any], key: str, valid: Sequence[Any], why: str = "") -> Any:
    value = _get(params, key, why)
    ok = isinstance(value, str) if isinstance(valid[0], str) else _is_int(value)
    if not ok or value not in valid:
        hint = suggest(value, [str(v) for v in valid]) if isinstance(value, str) else ""
        allowed = ", ".join(repr(v) for v in valid)
        raise SpaceError(f"chain CNN parameter '{key}' must be one of {allowed}, got {value!r}.{hint}")
    return int(value) if _is_int(value) else str(value)


def _get_bool(params: Mapping[str, Any], key: str, why: str = "") -> bool:
    value = _get(params, key, why)
    if not isinstance(value, bool | np.bool_):
        raise SpaceError(f"chain CNN parameter '{key}' must be a bool, got {value!r}.")
    return bool(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    if (
        not isinstance(input_shape, Sequence)
        or len(input_shape) != 3
        or not all(_is_int(d) and d >= 1 for d in input_shape)
    ):
        raise ConfigError(
            f"input_shape must be (channels, height, width) of positive ints, got {input_shape!r}."
        )
    c, h, w = (int(d) for d in input_shape)
    return c, h, w


# -- planning ---------------------------------------------------------------------------------------


def _out_len(size: int, kernel: int, stride: int, padding: str) -> int:
    pad = kernel // 2 if padding == "same" else 0
    return (size + 2 * pad - kernel) // stride + 1


def plan_chain_cnn(params: Mapping[str, Any], input_shape: tuple[int, int, int]) -> list[LayerPlan]:
    """Validate a chain CNN architecture and compute the realised settings of every layer.

    See :func:`build_chain_cnn` for the parameter schema and the adaptation rule.

    Args:
        params: the architecture's flat parameter mapping.
        input_shape: ``(channels, height, width)`` of one input.

    Returns:
        One :class:`LayerPlan` per layer, in order.

    Raises:
        SpaceError: if a parameter is missing or invalid; the message names the key.
        ConfigError: if ``input_shape`` is not three positive ints.
    """
    if not isinstance(params, Mapping):
        raise SpaceError(
            f"a chain CNN architecture must be a mapping of parameters, got {type(params).__name__}."
        )
    c, h, w = _check_input_shape(input_shape)
    depth = _get_int(params, "depth")
    plan: list[LayerPlan] = []
    for i in range(depth):
        why = f" (depth is {depth}, so layers 0..{depth - 1} need it)"
        key = f"layer{i}."
        op = _get_choice(params, key + "op", CHAIN_OPS, why)
        kernel = _get_int(params, key + "kernel", why, odd=True)
        stride = _get_choice(params, key + "stride", _STRIDES, why)
        padding = _get_choice(params, key + "padding", _PADDINGS, why)
        if op in _CONV_OPS:
            why = f" (layer {i} is a '{op}' layer)"
            out_channels = _get_int(params, key + "filters", why)
            act: str | None = _get_choice(params, key + "act", sorted(ACTIVATIONS), why)
            skip = _get_bool(params, key + "skip", why)
        else:
            out_channels, act, skip = c, None, False

        adapted: list[str] = []
        if padding == "valid" and kernel > min(h, w):
            padding = "same"
            adapted.append(f"padding valid->same: kernel {kernel} > map {h}x{w}")
        if stride == 2 and h == 1 and w == 1:
            stride = 1
            adapted.append("stride 2->1: map is 1x1")
        limit = 2 * max(h, w) - 1
        if op not in _CONV_OPS and padding == "same" and kernel > limit:
            adapted.append(f"kernel {kernel}->{limit}: same output on map {h}x{w}")
            kernel = limit
        out_h, out_w = _out_len(h, kernel, stride, padding), _out_len(w, kernel, stride, padding)

        shortcut = None
        if skip:
            same_shape = out_channels == c and (out_h, out_w) == (h, w)
            shortcut = "identity" if same_shape else "projection"
        plan.append(
            LayerPlan(
                index=i,
                op=op,
                in_channels=c,
                out_channels=out_channels,
                kernel=kernel,
                stride=stride,
                padding=padding,
                in_size=(h, w),
                out_size=(out_h, out_w),
                act=act,
                skip=skip,
                shortcut=shortcut,
                adapted=tuple(adapted),
            )
        )
        c, h, w = out_channels, out_h, out_w
    return plan


# -- modules ----------------------------------------------------------------------------------------


def _make_layer(layer: LayerPlan, device: torch.device | str | None) -> nn.Module:
    op, k, s = layer["op"], layer["kernel"], layer["stride"]
    pad = k // 2 if layer["padding"] == "same" else 0
    if op == "maxpool":
        return nn.MaxPool2d(k, s, pad)
    if op == "avgpool":
        return nn.AvgPool2d(k, s, pad, count_include_pad=False)
    act = layer["act"]
    assert act is not None  # conv layers always carry one (plan_chain_cnn guarantees it)
    block = ConvBNAct if op == "conv" else SepConvBNAct
    body = block(layer["in_channels"], layer["out_channels"], k, s, pad, act, device=device)
    if layer["shortcut"] is None:
        return body
    if layer["shortcut"] == "identity":
        return Residual(body)
    # "valid" shrinks the map by k - 1 before striding; crop the shortcut's input by the same amount.
    crop = 0 if layer["padding"] == "same" else k // 2
    shortcut = projection_shortcut(layer["in_channels"], layer["out_channels"], s, crop, device=device)
    return Residual(body, shortcut)


class ChainNet(nn.Module):
    """A chain of conv / separable-conv / pooling layers, then global average pooling and a linear head.

    Build it with :func:`build_chain_cnn`; the constructor takes an already computed plan.

    Args:
        plan: per-layer settings from :func:`plan_chain_cnn`.
        input_shape: ``(channels, height, width)`` the plan was computed for.
        num_classes: number of output logits.
        device: where to create the parameters (``"meta"`` allocates nothing).

    Attributes:
        plan: the realised :class:`LayerPlan` of every layer; ``features[i]`` is built from ``plan[i]``.
        input_shape: the input shape the model was planned for.
        num_classes: number of output logits.
    """

    def __init__(
        self,
        plan: Sequence[LayerPlan],
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.plan: list[LayerPlan] = list(plan)
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.features = nn.Sequential(*(_make_layer(layer, device) for layer in self.plan))
        last_channels = self.plan[-1]["out_channels"] if self.plan else input_shape[0]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last_channels, num_classes, device=device)
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(N, num_classes)`` for a batch ``x`` of shape ``(N, C, H, W)``."""
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))

    def summary(self) -> str:
        """Return the realised plan as a text table, one row per layer."""
        c, h, w = self.input_shape
        rows = [f"ChainNet: input {c}x{h}x{w} -> {self.num_classes} classes"]
        rows.append(f"{'#':>3} {'op':<8} {'k':>2} {'s':>2} {'pad':<5} {'channels':>11} {'size':>13}  extra")
        for layer in self.plan:
            (ih, iw), (oh, ow) = layer["in_size"], layer["out_size"]
            extra = [layer["act"] or ""]
            if layer["shortcut"]:
                extra.append(f"skip={layer['shortcut']}")
            extra.extend(f"[{note}]" for note in layer["adapted"])
            rows.append(
                f"{layer['index']:>3} {layer['op']:<8} {layer['kernel']:>2} {layer['stride']:>2} "
                f"{layer['padding']:<5} {layer['in_channels']:>4}->{layer['out_channels']:<5} "
                f"{f'{ih}x{iw}->{oh}x{ow}':>13}  {' '.join(e for e in extra if e)}"
            )
        rows.append(f"head: global avg pool -> linear({self.classifier.in_features}, {self.num_classes})")
        return "\n".join(rows)

    def extra_repr(self) -> str:
        return f"input_shape={tuple(self.input_shape)}, num_classes={self.num_classes}"


def build_chain_cnn(
    params: Mapping[str, Any],
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    device: torch.device | str | None = None,
) -> ChainNet:
    """Build a chain CNN architecture as a :class:`torch.nn.Module` for a given input shape.

    Parameter schema (string keys; ``i`` runs over ``range(depth)``, keys of layers ``>= depth``
    and other unknown keys are ignored):

    - ``depth``: int >= 1, the number of layers.
    - ``layer{i}.op``: one of :data:`CHAIN_OPS` (``conv``, ``sepconv``, ``maxpool``, ``avgpool``).
    - ``layer{i}.kernel``: odd int >= 1; ``layer{i}.stride``: 1 or 2;
      ``layer{i}.padding``: ``"same"`` (``kernel // 2`` on each side) or ``"valid"`` (none).
    - ``conv`` / ``sepconv`` only: ``layer{i}.filters`` (int >= 1), ``layer{i}.act`` (an
      :data:`~nasforge.nn.ACTIVATIONS` name) and ``layer{i}.skip`` (bool, residual connection).
      Pooling layers keep the channel count and ignore these keys.

    Layers: ``conv`` is Conv2d (no bias) → BatchNorm → activation; ``sepconv`` is depthwise Conv2d →
    pointwise 1×1 Conv2d → BatchNorm → activation; ``maxpool`` / ``avgpool`` pool with the layer's
    kernel and stride (average pooling excludes the padding). With ``skip`` the layer returns
    ``body(x) + shortcut(x)``, the shortcut being the identity when the shapes match and otherwise a
    1×1 Conv2d with the body's stride plus BatchNorm (centre-cropped first under "valid" padding so
    that it yields the body's spatial size). The head is global average pooling → Linear.

    Adaptation to the input shape (so that no valid architecture fails on any input shape). Each
    layer is checked, in order, against the spatial size ``H×W`` of the map it receives:

    1. a ``"valid"`` layer whose kernel is larger than ``min(H, W)`` uses ``"same"`` padding;
    2. a stride-2 layer on a 1×1 map uses stride 1 (striding could not shrink it further);
    3. a pooling layer whose kernel exceeds ``2·max(H, W) − 1`` (so its padding would be at least
       the map size) is clamped to that size, which gives exactly the same output.

    Convolution kernels are never changed, so the parameter count does not depend on the input
    shape. The realised settings are in ``model.plan`` (``adapted`` lists the changes) and
    ``model.summary()`` prints them.

    Args:
        params: the architecture's flat parameter mapping.
        input_shape: ``(channels, height, width)`` of one input.
        num_classes: number of output logits, >= 1.
        device: where to create the parameters; ``"meta"`` builds without allocating memory, e.g.
            to count parameters or FLOPs for a constraint.

    Returns:
        A :class:`ChainNet` whose ``forward`` maps ``(N, C, H, W)`` to logits ``(N, num_classes)``.

    Raises:
        SpaceError: if a parameter is missing or invalid; the message names the key.
        ConfigError: if ``input_shape`` or ``num_classes`` is invalid.

    Example:
        >>> params = {"depth": 2, "layer0.op": "conv", "layer0.kernel": 3, "layer0.stride": 2,
        ...           "layer0.padding": "same", "layer0.filters": 16, "layer0.act": "relu",
        ...           "layer0.skip": True, "layer1.op": "maxpool", "layer1.kernel": 3,
        ...           "layer1.stride": 2, "layer1.padding": "valid"}
        >>> model = build_chain_cnn(params, (1, 28, 28), 10)
        >>> [layer["out_size"] for layer in model.plan]
        [(14, 14), (6, 6)]
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    plan = plan_chain_cnn(params, input_shape)
    if not _is_int(num_classes) or num_classes < 1:
        raise ConfigError(f"num_classes must be an int >= 1, got {num_classes!r}.")
    shape = _check_input_shape(input_shape)
    return ChainNet(plan, shape, int(num_classes), device=device)
