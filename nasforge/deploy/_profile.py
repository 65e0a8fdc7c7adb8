"""Profile a saved model: ``nasforge profile``'s measurements, ONNX runtimes included."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from nasforge.hardware import ModelProfile

__all__ = ["profile_model"]


def profile_model(
    model: str | Path,
    *,
    batches: Sequence[int] = (1,),
    threads: int = 1,
    repeats: int = 50,
    warmup: int = 10,
    int8: bool = False,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str = "cpu",
) -> ModelProfile:
    """Measure a ``.nasforge`` model (or a zoo model) on this machine with the
    :class:`~nasforge.hardware.Profiler`.

    Parameters, FLOPs and peak activation memory of its network, and the latency of PyTorch eager
    and ONNX Runtime fp32 (and INT8 with ``int8``, calibrated on 256 images of ``dataset``, default
    the model's: :func:`~nasforge.deploy._calibrate.calibration_images`) at each batch size, with
    ``threads`` threads, ``warmup`` untimed then ``repeats`` timed calls; with a GPU ``device``,
    PyTorch eager on it as well, in its own row. A detector is timed in PyTorch eager only (its
    network: the CenterNet maps, without decoding and NMS) until detectors export to ONNX.

    Raises:
        ConfigError: ``int8`` with a detector.

    Example:
        >>> profile_model("digits-s", repeats=2, warmup=0).params  # doctest: +SKIP
        65978
    """
    from nasforge._device import resolve_device
    from nasforge.deploy._calibrate import calibration_images
    from nasforge.deploy._model import load
    from nasforge.hardware import ModelProfile, Profiler

    where = resolve_device(device)  # before the model is read
    loaded = load(model)
    detector = loaded.task == "detection"
    if detector and int8:
        raise ConfigError(
            f"--int8 needs an INT8 ONNX export, which detectors do not have yet; profile {model} without "
            "--int8 (PyTorch eager latency, parameters, FLOPs)"
        )
    calibration = None
    if int8:
        calibration = calibration_images(loaded, dataset, data_dir, download=download, n=256)["calibration"]
    profiler = Profiler(
        runtimes=("torch",) if detector else ("torch", "onnx", "int8") if int8 else ("torch", "onnx"),
        threads=threads,
        repeats=repeats,
        warmup=warmup,
    )
    found = profiler.profile(
        loaded, batches=batches, calibration=calibration, device=where if where.type != "cpu" else None
    )
    return ModelProfile(
        model=str(model),
        input_shape=tuple(found["input_shape"]),
        params=found["params"],
        flops=found["flops"],
        peak_activation_bytes=found["peak_activation_bytes"],
        threads=threads,
        repeats=repeats,
        warmup=warmup,
        latency=found["latency"],
        gpu=found.get("gpu"),
    )
