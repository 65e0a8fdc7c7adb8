"""The chain CNN space: a variable-depth stack of conv / separable-conv / pooling layers.

Each layer chooses an operation, kernel size, stride and padding; convolution layers also choose
their filters, activation and an optional residual skip. Parameters are named ``depth`` and
``layer{i}.{op,kernel,stride,padding,filters,act,skip}``; a layer's settings are active only when
``i < depth``, and filters/act/skip only for ``conv`` / ``sepconv`` layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.errors import SpaceError
from nasforge.registry import suggest
from nasforge.space._base import Architecture, Constraint, SearchSpace, check_width
from nasforge.space._constraints import MaxParams
from nasforge.space._dimensions import Choice, Dimension, IntRange, as_dimension, dimension_from_dict
from nasforge.space._vocab import ACTIVATION_MODULES, CHAIN_OPS

if TYPE_CHECKING:
    pass

__all__ = ["ChainCNN"]

CONV_OPS = ("conv", "sepconv")
LAYER_KEYS = ("op", "kernel", "stride", "padding", "filters", "act", "skip")
CONV_ONLY = ("filters", "act", "skip")
DEFAULT_LAYER: dict[str, list[Any]] = {
    "op": ["conv", "sepconv", "maxpool", "avgpool"],
    "kernel": [3, 5],
    "stride": [1, 2],
    "padding": ["same"],
    "filters": [16, 32, 64],
    "act": ["relu", "hardswish"],
    "skip": [False, True],
}


def _check_layer_dim(key: str, dim: Dimension) -> None:
    for v in dim.values():
        ok = {
            "op": v in CHAIN_OPS,
            "kernel": isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 == 1,
            "stride": v in (1, 2) and not isinstance(v, bool),
            "padding": v in ("same", "valid"),
            "filters": isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "act": v in ACTIVATION_MODULES,
            "skip": isinstance(v, bool),
        }[key]
        if not ok:
            allowed = {
                "op": f"one of {list(CHAIN_OPS)}",
                "kernel": "odd integers >= 1",
                "stride": "1 or 2",
                "padding": "'same' or 'valid'",
                "filters": "positive integers",
                "act": f"one of {sorted(ACTIVATION_MODULES)}",
                "skip": "true or false",
            }[key]
            raise SpaceError(f"chain_cnn layer.{key}: {v!r} is not allowed; use {allowed}")


class ChainCNN(SearchSpace):
    """A chain of convolution and pooling layers with variable depth, ending in a linear classifier.

    Every architecture builds into a working network for any input shape: a stride or 'valid'
    padding that would shrink a feature map below one pixel is applied as stride 1 / 'same'
    (see :func:`nasforge.nn.build_chain_cnn`).

    Args:
        depth: number of layers: an :class:`IntRange`, a ``(low, high)`` pair, or a fixed int.
        layer: per-layer choices overriding the defaults: keys ``op`` (conv, sepconv, maxpool,
            avgpool), ``kernel``, ``stride``, ``padding`` ('same' / 'valid'), ``filters``, ``act``
            (relu, gelu, hardswish, ...), ``skip`` (residual connection); values are lists or
            dimensions. Defaults: ``DEFAULT_LAYER``.
        constraints: extra constraints (:class:`MaxParams`, :class:`Predicate`, ...).
        max_params: shorthand for ``constraints=[MaxParams(max_params)]``.
        input_shape: (C, H, W) of the task (needed for parameter constraints; the experiment
            binds it from the task).
        num_classes: class count of the task, likewise.

    Example:
        >>> import numpy as np
        >>> import nasforge as nf
        >>> space = nf.spaces.ChainCNN(depth=(2, 4), layer={"filters": [8, 16]})
        >>> arch = space.sample(np.random.default_rng(0))
        >>> 2 <= arch.params["depth"] <= 4
        True
    """

    name = "chain_cnn"

    def __init__(
        self,
        *,
        depth: Dimension | Sequence[int] | int = (2, 6),
        layer: Mapping[str, Any] | None = None,
        constraints: Sequence[Constraint] = (),
        max_params: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> None:
        depth_dim = _depth_dimension(depth)
        if min(depth_dim.values()) < 1:
            raise SpaceError(f"chain_cnn depth must be >= 1, got {depth_dim!r}")
        layer = dict(layer or {})
        unknown = sorted(set(layer) - set(LAYER_KEYS))
        if unknown:
            hint = suggest(str(unknown[0]), list(LAYER_KEYS))
            raise SpaceError(
                f"chain_cnn layer has no setting {unknown}.{hint} Valid settings: {list(LAYER_KEYS)}."
            )
        layer_dims: dict[str, Dimension] = {}
        for key in LAYER_KEYS:
            dim = as_dimension(layer.get(key, DEFAULT_LAYER[key]), what=f"chain_cnn layer.{key}")
            _check_layer_dim(key, dim)
            layer_dims[key] = dim
        self.depth_dim = depth_dim
        self.layer_dims = layer_dims
        self.max_params = max_params
        dims: dict[str, Dimension] = {"depth": depth_dim}
        for i in range(max(depth_dim.values())):
            for key in LAYER_KEYS:
                dims[f"layer{i}.{key}"] = layer_dims[key]
        cons = list(constraints)
        if max_params is not None:
            cons.append(MaxParams(max_params))
        super().__init__(dims, constraints=cons, input_shape=input_shape, num_classes=num_classes)

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        if name == "depth":
            return True
        layer, _, key = name.partition(".")
        if int(layer[5:]) >= params["depth"]:
            return False
        return key not in CONV_ONLY or params[f"{layer}.op"] in CONV_OPS

    def options(self) -> dict[str, Any]:
        return {
            "depth": self.depth_dim.to_dict(),
            "layer": {k: d.to_dict() for k, d in self.layer_dims.items()},
        }

    def metric_floor(self, metric: str, *, width: float = 1.0) -> float | None:
        """Lower bounds of ``params`` and ``flops``: the linear head alone.

        Every network ends in global average pooling and ``Linear(channels, classes)``, where
        ``channels`` is the input's (no convolution layer) or the last convolution's filters, and
        layers before it add parameters and FLOPs, never remove them. So the smallest possible
        head bounds the whole network from below (it is reached by an all-pooling architecture).
        """
        if metric not in ("params", "flops") or self.input_shape is None or self.num_classes is None:
            return None
        ops = set(self.layer_dims["op"].values())
        channels = []
        if ops - set(CONV_OPS):  # a network of pooling layers only keeps the input's channels
            channels.append(int(self.input_shape[0]))
        if ops & set(CONV_OPS):
            factor = check_width(width)
            channels += [max(1, round(f * factor)) for f in self.layer_dims["filters"].values()]
        c, k = min(channels), int(self.num_classes)
        return float(c * k + k if metric == "params" else 2 * c * k)

    def describe(self, arch: Architecture) -> str:
        """A compact one-line summary such as ``conv3x32/2-relu+skip > maxpool3 > sepconv5x64-hardswish``."""
        parts = []
        for i in range(arch.params["depth"]):
            p = {k: arch.params.get(f"layer{i}.{k}") for k in LAYER_KEYS}
            s = f"{p['op']}{p['kernel']}"
            if p["op"] in CONV_OPS:
                s += f"x{p['filters']}"
            if p["stride"] == 2:
                s += "/2"
            if p["padding"] == "valid":
                s += "v"
            if p["op"] in CONV_OPS:
                s += f"-{p['act']}" + ("+skip" if p["skip"] else "")
            parts.append(s)
        return " > ".join(parts)


def _depth_dimension(depth: Any) -> Dimension:
    if isinstance(depth, Dimension):
        return depth
    if isinstance(depth, bool):
        raise SpaceError(f"chain_cnn depth must be an int or a [low, high] range, got {depth!r}")
    if isinstance(depth, int):
        return IntRange(depth, depth)
    if isinstance(depth, Mapping):
        return dimension_from_dict(dict(depth))
    if isinstance(depth, (list, tuple)) and len(depth) == 2:
        return IntRange(*depth)
    if isinstance(depth, (list, tuple)):
        return Choice(list(depth))
    raise SpaceError(f"chain_cnn depth must be an int or a [low, high] range, got {depth!r}")
