"""The network builder of each built-in space, registered by space name in ``registry.BUILDERS``.

A search space is plain data below ``nn``: :meth:`SearchSpace.build <nasforge.space.SearchSpace.build>`
looks up the builder registered under the space's name and calls it, so the space never imports
``nn``. Every builder has one signature::

    builder(space, arch, input_shape, num_classes, *, device, width) -> nn.Module

``input_shape`` / ``num_classes`` of None mean the task the space is bound to
(:meth:`SearchSpace.task_shape <nasforge.space.SearchSpace.task_shape>`); ``width`` multiplies every
layer's channel count (rounded, at least 1). A new space's builder goes here, registered in
``nasforge/registry.py`` under the space's name.

Example:
    >>> import numpy as np
    >>> from nasforge.space import ChainCNN
    >>> space = ChainCNN(depth=(1, 2)).bind((1, 8, 8), 10)
    >>> net = space.build(space.sample(np.random.default_rng(0)))  # finds build_chain below
    >>> type(net).__name__
    'ChainNet'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from torch import nn

from nasforge.errors import SpaceError
from nasforge.nn._chain import build_chain_cnn
from nasforge.nn._detector import build_detector
from nasforge.nn._mbconv import MBConvNet
from nasforge.nn._nb201 import build_nb201_network
from nasforge.space import Architecture, ChainCNN, DetectorSpace, MBConvSpace, NB201Space, SearchSpace
from nasforge.space._architecture import check_width

__all__ = ["build_chain", "build_detector_space", "build_mbconv", "build_nb201"]

_S = TypeVar("_S", bound=SearchSpace)


def _expect(space: SearchSpace, cls: type[_S]) -> _S:
    """``space`` as a ``cls``: a space that only shares the name has no builder here."""
    if not isinstance(space, cls):
        raise SpaceError(
            f"space '{space.name}' has no network builder (the '{space.name}' builder builds "
            f"{cls.__name__} architectures, got a {type(space).__name__})"
        )
    return space


def build_chain(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    device: Any = None,
    width: float = 1.0,
) -> nn.Module:
    """The chain CNN of ``arch`` (:func:`~nasforge.nn.build_chain_cnn`), filters times ``width``."""
    shape, classes = _expect(space, ChainCNN).task_shape(input_shape, num_classes)
    params = dict(arch.params)
    if width != 1.0:
        factor = check_width(width)
        for key, value in arch.params.items():
            if key.endswith(".filters"):
                params[key] = max(1, round(value * factor))
    return build_chain_cnn(params, shape, classes, device=device)


def build_nb201(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    device: Any = None,
    width: float = 1.0,
) -> nn.Module:
    """The NB201 network of ``arch`` (C channels in the first stage, times ``width``)."""
    cell = _expect(space, NB201Space)
    shape, classes = cell.task_shape(input_shape, num_classes)
    C = cell.C if width == 1.0 else max(1, round(cell.C * check_width(width)))
    return build_nb201_network(arch.params, shape, classes, C=C, N=cell.N, device=device)


def build_mbconv(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    device: Any = None,
    width: float = 1.0,
) -> nn.Module:
    """The MobileNet-style network of ``arch``: its blocks, stem and head widths times ``width``."""
    mb = _expect(space, MBConvSpace)
    shape, classes = mb.task_shape(input_shape, num_classes)
    factor = check_width(width)
    blocks = mb.blocks(arch.params)
    if factor != 1.0:
        for blk in blocks:
            blk["out"] = max(1, round(blk["out"] * factor))
    stem = max(1, round(mb.stem * factor))
    head = max(1, round(mb.head * factor))
    return MBConvNet(blocks, shape, classes, stem=stem, head=head, device=device)


def build_detector_space(
    space: SearchSpace,
    arch: Architecture,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    device: Any = None,
    width: float = 1.0,
) -> nn.Module:
    """The detector of ``arch``: :func:`build_detector` of the space's plan at ``width``."""
    det = _expect(space, DetectorSpace)
    shape, classes = det.task_shape(input_shape, num_classes)
    return build_detector(det.plan(arch.params, width), shape, classes, device=device)
