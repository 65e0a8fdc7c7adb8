"""Parameter and FLOP counts, the cheapest hardware metrics (no timing, no export)."""

from __future__ import annotations

import numbers

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasforge._params import count_params  # the space's MaxParams counts with it too
from nasforge.errors import ConfigError

__all__ = ["count_flops", "count_params"]


def count_flops(model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 1) -> int:
    """Count the FLOPs of one forward pass with :class:`torch.utils.flop_counter.FlopCounterMode`.

    The model runs once on a zero tensor of shape ``(batch_size, *input_shape)`` in eval mode under
    :func:`torch.no_grad`, on the device and in the floating dtype of its parameters (or buffers);
    every submodule's training flag is restored afterwards, and nothing is printed. A model on the
    ``"meta"`` device works too and gives the same count without computing anything.

    The count is what ``FlopCounterMode`` reports: convolutions and matrix multiplications count
    2 FLOPs per multiply-accumulate (so ``2 × MACs``); biases, normalisation, activations, pooling
    and other elementwise operations are not counted.

    Args:
        model: the module to measure.
        input_shape: shape of one input without the batch dimension, e.g. ``(3, 32, 32)``.
        batch_size: batch size of the measured forward pass; FLOPs scale linearly with it.

    Returns:
        The total FLOP count.

    Raises:
        ConfigError: if ``input_shape`` or ``batch_size`` is not made of positive ints.

    Example:
        >>> count_flops(nn.Conv2d(3, 8, 3, padding=1), (3, 5, 7))  # 2 * (8*5*7 outputs) * (3*3*3)
        15120
    """
    if not all(_positive_int(d) for d in input_shape):
        raise ConfigError(f"input_shape must be a tuple of positive ints, got {input_shape!r}.")
    if not _positive_int(batch_size):
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    device, dtype = _device_and_dtype(model)
    x = torch.zeros((int(batch_size), *(int(d) for d in input_shape)), device=device, dtype=dtype)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        # Restore per module: a model may keep some parts (e.g. frozen BatchNorm) in eval on purpose.
        for module, training in modes:
            module.training = training
    return int(counter.get_total_flops())


def _positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


def _device_and_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    floating = [t.dtype for t in tensors if t.is_floating_point()]
    return device, floating[0] if floating else torch.get_default_dtype()
