"""The normalisation in front of an exported network (torch is imported here, not by the pipeline)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["PixelNetwork"]


class PixelNetwork(nn.Module):
    """``net`` with its input normalisation in front: raw pixels ``(N, C, H, W)`` in [0, 1] in.

    Made by :meth:`ImagePipeline.network <nasforge.data._pipeline.ImagePipeline.network>`;
    the normalisation is :func:`~nasforge.data._pipeline.normalize`'s, as graph operations.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> Any:
        return self.net((x - self.mean) / self.std)
