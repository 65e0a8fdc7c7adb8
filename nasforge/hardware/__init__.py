"""Cheap hardware metrics of a built model: parameter count and FLOPs.

Example:
    >>> from torch import nn
    >>> from nasforge.hardware import count_flops, count_params
    >>> count_params(nn.Linear(20, 10))
    210
    >>> count_flops(nn.Linear(20, 10), (20,))
    400
"""

from __future__ import annotations

from nasforge.hardware._count import count_flops, count_params

__all__ = ["count_flops", "count_params"]
