"""Builders that turn architectures into ``torch.nn.Module`` objects, and the layers they share.

Example:
    >>> from nasforge.nn import build_chain_cnn
    >>> params = {"depth": 1, "layer0.op": "sepconv", "layer0.kernel": 3, "layer0.stride": 1,
    ...           "layer0.padding": "same", "layer0.filters": 8, "layer0.act": "hardswish",
    ...           "layer0.skip": False}
    >>> build_chain_cnn(params, (3, 32, 32), num_classes=10).plan[0]["out_size"]
    (32, 32)
"""

from __future__ import annotations

from nasforge.nn._blocks import K1KXBlock, RepVGGBlock, reparameterize
from nasforge.nn._chain import CHAIN_OPS, ChainNet, LayerPlan, build_chain_cnn, plan_chain_cnn
from nasforge.nn._layers import ACTIVATIONS, make_activation
from nasforge.nn._nb201 import build_nb201_network

__all__ = [
    "ACTIVATIONS",
    "CHAIN_OPS",
    "ChainNet",
    "K1KXBlock",
    "LayerPlan",
    "RepVGGBlock",
    "build_chain_cnn",
    "build_nb201_network",
    "make_activation",
    "plan_chain_cnn",
    "reparameterize",
]
