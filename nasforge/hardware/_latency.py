"""Measured latency on this machine (PyTorch eager and ONNX Runtime) and peak activation memory.

Latency is measured, never estimated: after ``warmup`` untimed calls, ``repeats`` calls are timed
one by one with :func:`time.perf_counter_ns` on a fixed input, with the thread count fixed (and
recorded) for PyTorch (``torch.set_num_threads``) or ONNX Runtime (``intra_op_num_threads``, one
inter-op thread). The report gives the median (the figure to use), the spread (10th and 90th
percentiles, the coefficient of variation) and every sample.

A module on a GPU is timed there, with the device synchronised before and after every call (a
GPU runs queued work asynchronously; without it the clock times the launch, not the work), and
its report says so: backend ``"torch_cuda"`` (or ``"torch_mps"``). GPU and CPU latencies are
different quantities: nasforge never stores them under one metric name.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["BACKENDS", "LatencyReport", "measure_latency", "peak_activation_bytes"]

BACKENDS = ("torch", "onnxruntime")


@dataclass(frozen=True)
class LatencyReport:
    """Timings of one model, backend, batch size and thread count (milliseconds per call).

    Attributes:
        backend: ``"torch"`` (eager, CPU), ``"torch_cuda"`` / ``"torch_mps"`` (eager on that GPU,
            synchronised timing) or ``"onnxruntime"`` (CPU).
        batch_size: images per call.
        threads: the intra-op thread count used.
        warmup: untimed calls before the measurement.
        median_ms: median time per call.
        p10_ms / p90_ms: 10th and 90th percentiles.
        mean_ms / std_ms: mean and standard deviation.
        cv: coefficient of variation (``std / mean``).
        samples_ms: every timed call.
    """

    backend: str
    batch_size: int
    threads: int
    warmup: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    samples_ms: list[float] = field(repr=False)

    def to_dict(self, samples: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not samples:
            out.pop("samples_ms")
        return out

    def __str__(self) -> str:
        return (
            f"{self.backend}, batch {self.batch_size}, {self.threads} thread(s): median "
            f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}, CV {self.cv:.1%}, "
            f"{len(self.samples_ms)} runs)"
        )


def measure_latency(
    model: nn.Module | str | Path,
    input_shape: tuple[int, ...],
    *,
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
) -> LatencyReport:
    """Time a forward pass of ``model`` on a batch of zeros.

    Args:
        model: a ``torch.nn.Module`` (timed in eval mode under ``torch.no_grad`` and restored to
            its previous mode), or the path of an ONNX file (timed with ONNX Runtime's CPU
            provider; its first input gets the batch).
        input_shape: one input's shape without the batch dimension, e.g. ``(1, 28, 28)``.
        batch_size: images per call.
        threads: intra-op threads (fixed for the measurement and recorded).
        warmup: untimed calls first (lazy initialisation, caches).
        repeats: timed calls (>= 2).

    Raises:
        ConfigError: a bad count, or a model that is neither a module nor an existing file.
    """
    from nasforge._checks import check_int

    check_int("batch_size", batch_size, 1)
    check_int("threads", threads, 1)
    check_int("warmup", warmup, 0)
    check_int("repeats", repeats, 2)
    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"no ONNX file {str(path)!r} to time")
        backend, samples = "onnxruntime", _time_onnx(path, input_shape, batch_size, threads, warmup, repeats)
    else:
        param = next(model.parameters(), None)
        kind = param.device.type if param is not None else "cpu"
        backend = "torch" if kind == "cpu" else f"torch_{kind}"
        samples = _time_torch(model, input_shape, batch_size, threads, warmup, repeats)
    ms = [s / 1e6 for s in samples]
    mean = statistics.fmean(ms)
    std = statistics.stdev(ms)
    return LatencyReport(
        backend=backend,
        batch_size=batch_size,
        threads=threads,
        warmup=warmup,
        median_ms=statistics.median(ms),
        p10_ms=float(np.percentile(ms, 10)),
        p90_ms=float(np.percentile(ms, 90)),
        mean_ms=mean,
        std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        samples_ms=ms,
    )


def _time_torch(
    model: nn.Module, input_shape: tuple[int, ...], batch: int, threads: int, warmup: int, repeats: int
) -> list[int]:
    import torch

    from nasforge._device import synchronize
    from nasforge._threads import torch_threads

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros((batch, *input_shape), dtype=dtype, device=device)
    was_training = model.training
    model.eval()
    samples: list[int] = []
    try:
        with torch_threads(threads), torch.no_grad():
            for _ in range(warmup):
                model(x)
            for _ in range(repeats):
                synchronize(device)  # a no-op on the CPU
                t0 = time.perf_counter_ns()
                model(x)
                synchronize(device)
                samples.append(time.perf_counter_ns() - t0)
    finally:
        model.train(was_training)
    return samples


def _time_onnx(
    path: Path, input_shape: tuple[int, ...], batch: int, threads: int, warmup: int, repeats: int
) -> list[int]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ConfigError(f"{path} is not a model ONNX Runtime can load: {exc}") from None
    name = session.get_inputs()[0].name
    feed = {name: np.zeros((batch, *input_shape), dtype=np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        session.run(None, feed)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def peak_activation_bytes(model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 1) -> int:
    """Peak activation memory of a forward pass, estimated layer by layer (float32 bytes).

    Every leaf module's input and output must be alive while it runs; the estimate is the largest
    ``input + output`` size over the leaf modules (plus a residual block's input that its
    shortcut still holds), which is what a layer-by-layer runtime needs at least. Weights are not
    counted. Works on the ``"meta"`` device too.
    """
    import torch

    peak = 0
    held: list[int] = []

    def nbytes(t: Any) -> int:
        if isinstance(t, torch.Tensor):
            return t.numel() * 4
        if isinstance(t, list | tuple):
            return sum(nbytes(v) for v in t)
        return 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal peak
        peak = max(peak, nbytes(inputs) + nbytes(output) + sum(held))

    def pre_residual(module: nn.Module, inputs: Any) -> None:
        held.append(nbytes(inputs))

    def post_residual(module: nn.Module, inputs: Any, output: Any) -> None:
        held.pop()

    from nasforge.nn._layers import Residual

    handles = []
    for m in model.modules():
        if isinstance(m, Residual):
            handles.append(m.register_forward_pre_hook(pre_residual))
            handles.append(m.register_forward_hook(post_residual))
        elif not list(m.children()):
            handles.append(m.register_forward_hook(hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((batch_size, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(peak)
