"""A network's trainable parameter count: the one definition, low-level so every layer may use it.

The search space needs it to check :class:`~nasforge.space.MaxParams` while sampling, below the
hardware layer whose profiler reports it (:func:`nasforge.hardware.count_params` is this function).
It needs no torch import: it only walks the module's parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["count_params"]


def count_params(model: nn.Module) -> int:
    """Return the number of trainable parameters (``requires_grad``), each shared tensor once.

    Works on models built on the ``"meta"`` device, which allocate no memory.

    Args:
        model: any module.

    Returns:
        The total number of trainable scalar parameters.

    Example:
        >>> from torch import nn
        >>> count_params(nn.Conv2d(3, 8, 3, bias=False))
        216
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
