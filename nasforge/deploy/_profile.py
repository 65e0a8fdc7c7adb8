"""Profile a saved model: ``nasforge profile``'s measurements, ONNX runtimes included."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
    """Measure a ``.nasforge`` model (or a zoo model) on this machine.

    Parameters, FLOPs and peak activation memory of its network, and the latency of PyTorch eager
    and ONNX Runtime fp32 (and INT8 with ``int8``, calibrated on 256 images of ``dataset``, default
    the model's: :func:`~nasforge.deploy._calibrate.calibration_images`) at each batch size; see
    :func:`nasforge.hardware.profile_module` for the rest.

    Example:
        >>> profile_model("digits-s", repeats=2, warmup=0).params  # doctest: +SKIP
        65978
    """
    from nasforge._device import resolve_device
    from nasforge.deploy._calibrate import calibration_images
    from nasforge.deploy._model import load
    from nasforge.hardware import profile_module

    resolve_device(device)  # before the model is read
    loaded = load(model)
    with tempfile.TemporaryDirectory() as tmp:
        exported = {"onnx_fp32": Path(tmp) / "m.onnx"}
        loaded.export(exported["onnx_fp32"], format="onnx")
        if int8:
            calib = calibration_images(loaded, dataset, data_dir, download=download, n=256)
            exported["onnx_int8"] = Path(tmp) / "m.int8.onnx"
            loaded.export(exported["onnx_int8"], format="int8", calibration=calib["calibration"])
        return profile_module(
            loaded.module,
            loaded.input_shape,
            exported=exported,
            batches=batches,
            threads=threads,
            repeats=repeats,
            warmup=warmup,
            device=device,
            name=str(model),
        )
