"""Hardware metrics of a built model: parameter count, FLOPs, peak activation memory, measured latency.

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
from nasforge.hardware._latency import BACKENDS, LatencyReport, measure_latency, peak_activation_bytes
from nasforge.hardware._predict import LatencyTable
from nasforge.hardware._profile import ModelProfile, profile_module

__all__ = [
    "BACKENDS",
    "LatencyReport",
    "LatencyTable",
    "ModelProfile",
    "count_flops",
    "count_params",
    "measure_latency",
    "peak_activation_bytes",
    "profile_module",
]
