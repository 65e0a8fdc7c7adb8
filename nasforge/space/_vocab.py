"""Names the built-in spaces offer and :mod:`nasforge.nn` implements.

The spaces are plain data below ``nn``: they check a choice against these names when they are
created, and ``nn`` maps each name to the module it builds (:data:`nasforge.nn.ACTIVATIONS`,
:data:`nasforge.nn.CHAIN_OPS`). A new activation is one entry here; ``nn`` picks it up.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ACTIVATION_MODULES", "CHAIN_OPS"]

CHAIN_OPS: tuple[str, ...] = ("conv", "sepconv", "maxpool", "avgpool")
"""Layer operations of the chain CNN space."""

ACTIVATION_MODULES: Mapping[str, str] = MappingProxyType(
    {
        "relu": "ReLU",
        "relu6": "ReLU6",
        "leaky_relu": "LeakyReLU",
        "elu": "ELU",
        "gelu": "GELU",
        "silu": "SiLU",
        "hardswish": "Hardswish",
        "mish": "Mish",
        "tanh": "Tanh",
    }
)
"""Activation names a search space may use, mapped to the ``torch.nn`` class that implements each."""
