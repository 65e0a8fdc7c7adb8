"""Export a model to the runtimes it is deployed and timed on: ONNX (dynamic batch), INT8 ONNX
(static, calibrated), TorchScript.

Every exported graph takes **raw pixels** ``(N, C, H, W)`` in [0, 1] and returns logits: the
model's normalisation (mean / std) is part of the graph (the image pipeline's
:meth:`~nasforge.data._pipeline.ImagePipeline.network`), so a deployment only resizes and scales its
images. The ONNX files carry the class names, input size and normalisation in their metadata
(``metadata_props``: ``nasforge.class_names`` as JSON, ...).

The :class:`~nasforge.hardware.Profiler` times these files; :func:`nasforge.deploy.export` and a
model's ``export`` method are this module's :func:`export`.

Each export checks itself at once (:class:`ExportReport`): the exported model is run on a batch
(the calibration images, or seeded random pixels) next to the PyTorch model and the largest
absolute difference of the logits and the share of equal top-1 classes are reported; for fp32
ONNX a difference above ``1e-4`` is an error. INT8 is approximate by nature: its report gives the
top-1 agreement, and the accuracy of both models when labelled images are given.

A detector exports its fused network's output maps and is checked on decoded boxes and mAP
(:mod:`nasforge.hardware._export_det`).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from nasforge._paths import check_writable_file
from nasforge.errors import ConfigError, NasforgeError

if TYPE_CHECKING:
    import torch

    from nasforge.data._pipeline import ImagePipeline
    from nasforge.hardware._export_det import DetectionExportReport
    from nasforge.space import Architecture

__all__ = ["FORMATS", "ExportReport", "Exportable", "export"]

FORMATS = ("onnx", "int8", "torchscript")
FP32_TOLERANCE = 1e-4


@dataclass
class ExportReport:
    """What an export wrote and how closely it matches the PyTorch model.

    Attributes:
        path: the exported file.
        format: ``"onnx"``, ``"int8"`` or ``"torchscript"``.
        max_abs_diff: largest absolute logit difference to PyTorch on the check batch.
        top1_agreement: share of check images with the same top-1 class.
        n_checked: images in the check batch.
        accuracy: ``{"pytorch": ..., "exported": ...}`` on labelled images, if given.
        seconds: time the export took (check included).
    """

    path: Path
    format: str
    max_abs_diff: float
    top1_agreement: float
    n_checked: int
    accuracy: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        acc = ""
        if self.accuracy:
            a, b = self.accuracy["pytorch"], self.accuracy["exported"]
            acc = f"; accuracy {a:.4f} (PyTorch) -> {b:.4f} ({self.format}), change {b - a:+.4f}"
        return (
            f"{self.path} ({self.format}): max |logit diff| {self.max_abs_diff:.2e}, top-1 agreement "
            f"{self.top1_agreement:.1%} on {self.n_checked} images{acc}"
        )


class Exportable(Protocol):
    """What :func:`export` needs of a model: a trained model (:func:`nasforge.load`) is one."""

    module: torch.nn.Module
    architecture: Architecture
    class_names: tuple[str, ...]

    @property
    def task(self) -> str:
        """``"classification"`` or ``"detection"``."""
        ...

    @property
    def pipeline(self) -> ImagePipeline:
        """The model's preprocessing: input shape, mean and std."""
        ...


def _check_batch(model: Exportable, images: Any, n: int, seed: int) -> torch.Tensor:
    import torch

    if images is not None:
        return model.pipeline.pixels(images)[0]
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *model.pipeline.input_shape), generator=g)


def export(
    model: Exportable,
    path: str | Path,
    *,
    format: str = "onnx",
    calibration: Any = None,
    eval_images: Any = None,
    eval_labels: Any = None,
    eval_targets: Any = None,
    max_map_drop: float | None = None,
    opset: int = 17,
    seed: int = 0,
) -> ExportReport | DetectionExportReport:
    """Export ``model`` to ``path`` and check the result against PyTorch.

    Args:
        model: a loaded model (:func:`nasforge.load`).
        path: the output file (``.onnx`` or ``.pt`` by convention).
        format: ``"onnx"`` (fp32, dynamic batch), ``"int8"`` (ONNX with static QDQ quantization,
            calibrated on ``calibration``) or ``"torchscript"`` (traced).
        calibration: images in any form the model accepts (paths, arrays, a pixel tensor
            ``(N, C, H, W)`` in [0, 1]); required for ``"int8"``: a few hundred representative
            training images.
        eval_images: the check batch (any accepted form); default the calibration images, else 64
            seeded random images.
        eval_labels: class indices of ``eval_images``; when given, both models' accuracy on them is
            reported (use held-out images, not the calibration ones, for an honest figure).
        eval_targets: a detector's ground truth of ``eval_images``, one ``{"boxes": (K, 4) xyxy in
            input pixels, "labels": (K,)}`` per image; when given, both models' COCO mAP is reported.
        max_map_drop: a detector's INT8 export fails (:class:`~nasforge.errors.ConfigError`, file
            removed) when its mAP on ``eval_targets`` is lower than PyTorch's by more than this;
            default: a warning only (see :mod:`nasforge.hardware._export_det`).
        opset: ONNX opset version.
        seed: seeds the random check batch.

    Returns:
        an :class:`ExportReport`, or for a detector (``model.task == "detection"``) a
        :class:`~nasforge.hardware._export_det.DetectionExportReport`: a detector exports its fused
        network's raw output maps (heatmap, size, offset), decoded in Python.

    Raises:
        ConfigError: unknown format, INT8 without calibration images, a ``path`` that cannot be
            written, or an fp32 export that does not match PyTorch within 1e-4.
    """
    if model.task == "detection":
        from nasforge.hardware._export_det import export_detector

        if eval_labels is not None:
            raise ConfigError(
                "a detector's check images are labelled with boxes: pass eval_targets=[{'boxes': ..., "
                "'labels': ...}, ...] (one per image), not eval_labels"
            )
        return export_detector(
            model,
            path,
            format=format,
            calibration=calibration,
            eval_images=eval_images,
            eval_targets=eval_targets,
            max_map_drop=max_map_drop,
            opset=opset,
            seed=seed,
        )
    if eval_targets is not None or max_map_drop is not None:
        raise ConfigError("eval_targets and max_map_drop are for detectors; a classifier takes eval_labels")
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; valid formats: {', '.join(FORMATS)}")
    if format == "int8" and calibration is None:
        raise ConfigError(
            "INT8 export needs calibration images (a few hundred training images): pass calibration=..."
        )
    check_writable_file(path, what="export file")
    with warnings.catch_warnings():
        # torch marks both TorchScript and its TorchScript-based ONNX exporter as deprecated; the
        # new exporter (dynamo=True) needs onnxscript, which nasforge does not depend on yet
        warnings.simplefilter("ignore", DeprecationWarning)
        return _export(model, path, format, calibration, eval_images, eval_labels, opset, seed)


def _export(
    model: Exportable,
    path: str | Path,
    format: str,
    calibration: Any,
    eval_images: Any,
    eval_labels: Any,
    opset: int,
    seed: int,
) -> ExportReport:
    import torch

    start = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = model.pipeline.network(model.module)
    batch = _check_batch(model, calibration if eval_images is None else eval_images, 64, seed)
    calib = _check_batch(model, calibration, 64, seed) if calibration is not None else batch
    with torch.no_grad():
        expected = net(batch).numpy()
    if format == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(net, batch[:1])
        traced.save(str(path))
        with torch.no_grad():
            got = torch.jit.load(str(path))(batch).numpy()
    else:
        fp32 = path if format == "onnx" else path.with_name(path.stem + ".fp32.onnx")
        _export_onnx(net, model, batch[:1], fp32, opset)
        if format == "int8":
            _quantize(fp32, path, calib)
            fp32.unlink()
        got = _run_onnx(path, batch)
    diff = float(np.max(np.abs(got - expected))) if len(batch) else 0.0
    agree = float(np.mean(got.argmax(1) == expected.argmax(1))) if len(batch) else 1.0
    report = ExportReport(path, format, diff, agree, len(batch))
    if eval_labels is not None:
        y = np.asarray(eval_labels).reshape(-1)
        if len(y) != len(batch):
            raise ConfigError(f"eval_labels has {len(y)} entries for {len(batch)} images")
        report.accuracy = {
            "pytorch": float(np.mean(expected.argmax(1) == y)),
            "exported": float(np.mean(got.argmax(1) == y)),
        }
    report.seconds = round(time.perf_counter() - start, 3)
    if format in ("onnx", "torchscript") and diff > FP32_TOLERANCE:
        raise ConfigError(
            f"the {format} export of {model!r} differs from PyTorch by up to {diff:.2e} "
            f"(> {FP32_TOLERANCE}); the file was written but should not be trusted"
        )
    return report


def _export_onnx(
    net: torch.nn.Module,
    model: Exportable,
    example: torch.Tensor,
    path: Path,
    opset: int,
    outputs: tuple[str, ...] = ("logits",),
    extra_meta: dict[str, str] | None = None,
) -> None:
    import torch

    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise ConfigError("ONNX export needs the onnx package: pip install onnx") from None
    with torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["pixels"],
            output_names=list(outputs),
            dynamic_axes={"pixels": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    meta = {
        "nasforge.class_names": json.dumps(list(model.class_names)),
        "nasforge.input_shape": json.dumps(list(model.pipeline.input_shape)),
        "nasforge.input": "raw pixels (N, C, H, W) in [0, 1]; normalisation is part of the graph",
        "nasforge.mean": json.dumps(list(model.pipeline.mean)),
        "nasforge.std": json.dumps(list(model.pipeline.std)),
        "nasforge.architecture": json.dumps(model.architecture.to_dict()),
        "nasforge.task": model.task,
        **(extra_meta or {}),
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(path))


def _run_onnx(path: Path, batch: torch.Tensor) -> np.ndarray:
    out: np.ndarray = _run_onnx_all(path, batch)[0]
    return out


def _run_onnx_all(path: Path, batch: torch.Tensor) -> list[np.ndarray]:
    """Every output of the ONNX file at ``path`` on ``batch`` (CPU, ONNX Runtime's default threads)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    outputs: list[np.ndarray] = session.run(None, {"pixels": batch.numpy().astype(np.float32)})
    return outputs


def _quantize(fp32: Path, out: Path, batch: torch.Tensor) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(batch[i : i + 1].numpy() for i in range(len(batch)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._items, None)
            return None if item is None else {"pixels": item}

    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32.with_name(fp32.stem + ".prep.onnx")
    logging.disable(logging.WARNING)  # ONNX Runtime's advice on the root logger, already followed
    try:
        # shape inference and graph optimisation first (BatchNorm folded into the convolutions), as
        # ONNX Runtime recommends: quantizing a separate BatchNorm costs accuracy
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            # uint8 activations with int8 weights (U8S8): the combination ONNX Runtime's x86 integer
            # kernels run fastest; with int8 activations (S8S8) the same models ran 1.3-3.6x slower
            # (digits-s: 0.100 vs 0.028 ms at batch 1) at the same accuracy (benchmarks.md)
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    except Exception as exc:  # onnxruntime raises plain exceptions for graphs it cannot quantize
        raise NasforgeError(f"INT8 quantization of {fp32} failed: {exc}") from None
    finally:
        logging.disable(logging.NOTSET)
        prepared.unlink(missing_ok=True)
