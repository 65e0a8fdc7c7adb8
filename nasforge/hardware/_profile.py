"""Profile a built network on this machine: parameters, FLOPs, peak activation memory and latency.

This is what ``nasforge profile`` measures (:func:`nasforge.deploy.profile_model` adds the ONNX
exports of a saved model); the result is a plain record the command prints or dumps as JSON.

Example:
    >>> from torch import nn
    >>> from nasforge.hardware import profile_module
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    >>> p = profile_module(net, (1, 8, 8), repeats=2, warmup=0)
    >>> p.params, [row["runtime"] for row in p.latency]
    (650, ['torch_eager'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.hardware._count import count_flops, count_params
from nasforge.hardware._latency import measure_latency, peak_activation_bytes

if TYPE_CHECKING:
    from torch import nn

__all__ = ["ModelProfile", "profile_module"]


@dataclass
class ModelProfile:
    """What :func:`profile_module` measured.

    Attributes:
        model: what was profiled (a file or zoo name, for the record).
        input_shape: (C, H, W) of one input.
        params: parameters; flops: FLOPs of one input; peak_activation_bytes: the largest
            activation memory alive at once (batch 1, float32).
        threads: intra-op threads of the timings.
        latency: one row per runtime and batch size: ``runtime`` (``torch_eager``, a key of
            ``exported`` such as ``onnx_fp32``, or ``torch_eager_cuda`` / ``torch_eager_mps``)
            and the fields of :meth:`LatencyReport.to_dict`.
        gpu: the GPU's :func:`nasforge._device.device_info` when a GPU row was timed, else None.
        repeats / warmup: timed and untimed calls per measurement.
    """

    model: str
    input_shape: tuple[int, ...]
    params: int
    flops: int
    peak_activation_bytes: int
    threads: int
    repeats: int
    warmup: int
    latency: list[dict[str, Any]] = field(default_factory=list)
    gpu: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``nasforge profile --json``."""
        out: dict[str, Any] = {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "flops": self.flops,
            "peak_activation_bytes": self.peak_activation_bytes,
            "threads": self.threads,
            "latency": self.latency,
        }
        if self.gpu is not None:
            out["gpu"] = self.gpu
        return out


def profile_module(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    exported: Mapping[str, str | Path] | None = None,
    batches: Sequence[int] = (1,),
    threads: int = 1,
    repeats: int = 50,
    warmup: int = 10,
    device: str = "cpu",
    name: str = "",
) -> ModelProfile:
    """Count ``net``'s parameters, FLOPs and peak activations, and time it at each batch size.

    Args:
        net: the network, on the CPU.
        input_shape: (C, H, W) of one input.
        exported: more runtimes to time, by label: ONNX files of the same network
            (``{"onnx_fp32": "m.onnx"}``), timed with ONNX Runtime.
        batches: batch sizes to time.
        threads: intra-op threads, fixed for every timing.
        repeats / warmup: timed calls per measurement, after that many untimed ones.
        device: also time PyTorch eager on this GPU (``cuda``, ``cuda:N``, ``mps``; ``auto``: a GPU
            if there is one), synchronised after every call, as its own row; ``cpu``: CPU only.
        name: what is profiled, for the record.

    Raises:
        ConfigError: a ``device`` this machine does not have (before anything is measured).
    """
    from nasforge._device import device_info, resolve_device

    where = resolve_device(device)
    shape = tuple(input_shape)
    profile = ModelProfile(
        model=name,
        input_shape=shape,
        params=count_params(net),
        flops=count_flops(net, shape),
        peak_activation_bytes=peak_activation_bytes(net, shape),
        threads=threads,
        repeats=repeats,
        warmup=warmup,
    )
    runs: list[tuple[str, Any]] = [("torch_eager", net), *(exported or {}).items()]
    if where.type != "cpu":  # timed on the GPU, synchronised; its own row, never "the" latency
        import copy

        runs.append((f"torch_eager_{where.type}", copy.deepcopy(net).to(where)))
        profile.gpu = device_info(where)
    for b in batches:
        for label, target in runs:
            rep = measure_latency(
                target, shape, batch_size=b, threads=threads, warmup=warmup, repeats=repeats
            )
            profile.latency.append({"runtime": label, **rep.to_dict()})
    return profile
