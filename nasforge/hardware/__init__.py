"""Hardware metrics of a network: parameter count, FLOPs, peak activation memory, measured latency.

The :class:`Profiler` computes them all: before training (the constraint filter of a search), on
a trained network (``TrainEstimator(hardware=...)``) and on a saved model (``nasforge profile``).

Example:
    >>> from torch import nn
    >>> from nasforge.hardware import Profiler, count_flops, count_params
    >>> count_params(nn.Linear(20, 10))
    210
    >>> count_flops(nn.Linear(20, 10), (20,))
    400
    >>> Profiler().count(nn.Linear(20, 10), input_shape=(20,))
    {'params': 210, 'flops': 400}
"""

from __future__ import annotations

from nasforge.hardware._count import count_flops, count_params
from nasforge.hardware._latency import BACKENDS, LatencyReport, measure_latency, peak_activation_bytes
from nasforge.hardware._predict import LatencyTable
from nasforge.hardware._profiler import ModelProfile, Profiler

__all__ = [
    "BACKENDS",
    "LatencyReport",
    "LatencyTable",
    "ModelProfile",
    "Profiler",
    "count_flops",
    "count_params",
    "measure_latency",
    "peak_activation_bytes",
]
