"""Export of detectors: the fused network's raw output maps to ONNX (fp32 or static INT8), checked on boxes.

A detector (:class:`~nasforge.deploy.Detector`, a :class:`~nasforge.detect.CenterNet`) exports
what its network computes, not what its decoder does: the graph takes raw pixels ``(N, C, H, W)``
in [0, 1] (normalisation inside, as for a classifier) and returns three maps, ``heatmap`` (class
logits, ``(N, classes, h, w)``), ``size`` and ``offset`` (``(N, 2, h, w)``, in feature-map cells).
Peak finding, top-k, box assembly and NMS stay in Python (:func:`~nasforge.detect.decode_centernet`,
the decoder PyTorch uses, run on the ONNX outputs): they are a few cheap operations on small maps,
and a second implementation as ONNX ops would be a second thing to keep equal. RepVGG branches are
folded first (:func:`~nasforge.nn.reparameterize`, on a copy: the caller's model is not changed).
The file's metadata records ``nasforge.task = detection`` and ``nasforge.stride``, so
:class:`~nasforge.deploy.OnnxDetector` can decode it with nothing else at hand.

The check (:class:`DetectionExportReport`) runs PyTorch (the model as given, unfused) and ONNX
Runtime on the same images and compares the maps (largest absolute difference) and the decoded
boxes: the share of boxes matched one to one (same class, IoU >= 0.5) and the largest coordinate
difference of matched boxes, in pixels. With ground truth (``eval_targets``) both models' COCO mAP
is reported.

What fails and what warns:

- **fp32**: the maps must match within ``1e-4`` (as a classifier's logits): a larger difference is
  an exporter bug, and the export raises :class:`~nasforge.errors.ConfigError` (the file is
  written, and the message says not to trust it, as for a classifier). Boxes are reported, not
  judged: two peaks whose scores differ by 1e-7 may swap under float rounding.
- **INT8**: quantisation is approximate by nature, so its loss is reported and judged by the
  user: a box match below 90 % or an mAP drop above 0.05 gives an :class:`ExportQualityWarning` (its text
  is also :attr:`DetectionExportReport.warning`); ``max_map_drop=`` (``nasforge export
  --max-map-drop``) turns a larger mAP drop into an error that writes nothing (the file is
  written beside the target and moved there once checked), for a pipeline that must not ship a
  degraded model.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._paths import check_writable_file
from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from nasforge.hardware._export import Exportable

__all__ = [
    "DETECTION_FORMATS",
    "OUTPUTS",
    "DetectionExportReport",
    "ExportQualityWarning",
    "decode_maps",
    "export_detector",
    "match_boxes",
]

DETECTION_FORMATS = ("onnx", "int8")
#: the exported graph's outputs, in order
OUTPUTS = ("heatmap", "size", "offset")
FP32_TOLERANCE = 1e-4
#: an INT8 export warns below this share of matched boxes ...
INT8_MIN_MATCH = 0.9
#: ... or above this mAP drop
INT8_MAX_MAP_DROP = 0.05
#: decoding of the box check: the boxes a user sees, at the defaults of a detector's call
#: (``conf=0.25``, ``iou=0.7``); low-score peaks would swamp the share with noise
CHECK_DECODE = {"score_threshold": 0.25, "iou_threshold": 0.7, "max_dets": 300}
#: decoding for mAP: the thresholds the detection estimators score with
MAP_DECODE = {"score_threshold": 0.01, "iou_threshold": 0.6, "max_dets": 100}


class ExportQualityWarning(UserWarning):
    """An INT8 detector export lost more than :data:`INT8_MIN_MATCH` / :data:`INT8_MAX_MAP_DROP` allow."""


@dataclass
class DetectionExportReport:
    """What a detector export wrote and how closely its boxes match the PyTorch model's.

    Attributes:
        path: the exported file.
        format: ``"onnx"`` or ``"int8"``.
        max_abs_diff: largest absolute difference of the three output maps (heatmap logits, sizes
            and offsets in cells) on the check images.
        box_match: matched boxes (same class, IoU >= 0.5, one to one) over the larger of the two
            box counts, decoded as a detector's call does by default (score >= 0.25, NMS IoU 0.7);
            1.0 when neither model finds a box.
        box_max_diff: largest absolute coordinate difference of matched boxes, in input pixels.
        n_checked: check images.
        n_boxes: ``{"pytorch": ..., "exported": ...}`` boxes decoded on them.
        map: with ground truth, ``{"pytorch": {"map": ..., "map_50": ...}, "exported": {...}}``
            (COCO mAP@[.5:.95] and mAP@.5 on the check images).
        warning: why the export is doubtful (INT8 below the thresholds), else None.
        seconds: time the export took (check included).
    """

    path: Path
    format: str
    max_abs_diff: float
    box_match: float
    box_max_diff: float
    n_checked: int
    n_boxes: dict[str, int] = field(default_factory=dict)
    map: dict[str, dict[str, float]] = field(default_factory=dict)
    warning: str | None = None
    seconds: float = 0.0

    @property
    def map_drop(self) -> float | None:
        """PyTorch's mAP@[.5:.95] minus the export's (None without ground truth)."""
        if not self.map:
            return None
        return self.map["pytorch"]["map"] - self.map["exported"]["map"]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "path": str(self.path),
            "format": self.format,
            "max_abs_diff": self.max_abs_diff,
            "box_match": self.box_match,
            "box_max_diff": self.box_max_diff,
            "n_checked": self.n_checked,
            "n_boxes": dict(self.n_boxes),
            "map": {k: dict(v) for k, v in self.map.items()},
            "warning": self.warning,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        text = (
            f"{self.path} ({self.format}): max |map diff| {self.max_abs_diff:.2e}; boxes matched "
            f"{self.box_match:.1%} at IoU>=0.5 ({self.n_boxes.get('pytorch', 0)} PyTorch, "
            f"{self.n_boxes.get('exported', 0)} {self.format}), max |box diff| {self.box_max_diff:.3g} px "
            f"on {self.n_checked} images"
        )
        if self.map:
            a, b = self.map["pytorch"], self.map["exported"]
            text += (
                f"; mAP {a['map']:.4f} (PyTorch) -> {b['map']:.4f} ({self.format}), change "
                f"{b['map'] - a['map']:+.4f}; mAP@.5 {a['map_50']:.4f} -> {b['map_50']:.4f}"
            )
        if self.warning:
            text += f"\nwarning: {self.warning}"
        return text


def _maps_network(model: Exportable) -> torch.nn.Module:
    """The exported module: a fused copy of the network behind the normalisation, pixels in, the
    three maps out as a tuple (ONNX graphs have no dict outputs)."""
    from torch import nn

    from nasforge.nn import reparameterize

    pixel_net = model.pipeline.network(reparameterize(copy.deepcopy(model.module).eval()))

    class MapsNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = pixel_net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = self.net(x)
            return tuple(out[name] for name in OUTPUTS)

    return MapsNetwork().eval()


def decode_maps(
    maps: Any, stride: int, image_size: tuple[int, int], **decode: Any
) -> list[dict[str, torch.Tensor]]:
    """:func:`~nasforge.detect.decode_centernet` of output maps: a dict, or the exported graph's
    outputs in :data:`OUTPUTS` order (numpy arrays or tensors)."""
    import torch

    from nasforge.detect import decode_centernet

    if not isinstance(maps, dict):
        maps = dict(zip(OUTPUTS, maps, strict=True))
    tensors = {
        k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v) for k, v in maps.items()
    }
    return decode_centernet(tensors, stride, image_size, **decode)


def match_boxes(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], iou: float = 0.5
) -> tuple[int, float]:
    """Greedy one-to-one matching of two images' detections (by ``a``'s score order): a pair has
    the same label and IoU >= ``iou``, or (boxes without area, such as an untrained size head
    gives, have no IoU) coordinates within half a pixel. Returns (pairs, largest coordinate
    difference of a pair)."""
    from nasforge.detect import box_iou

    if len(a["boxes"]) == 0 or len(b["boxes"]) == 0:
        return 0, 0.0
    boxes_a, boxes_b = a["boxes"].float(), b["boxes"].float()
    overlap = box_iou(boxes_a, boxes_b).nan_to_num(0.0)
    close = (boxes_a[:, None, :] - boxes_b[None, :, :]).abs().amax(dim=2) <= 0.5
    overlap[close] = overlap[close].clamp(min=iou)
    overlap[a["labels"][:, None] != b["labels"][None, :]] = -1.0
    taken: set[int] = set()
    pairs, worst = 0, 0.0
    for i in range(len(a["boxes"])):
        row = overlap[i].clone()
        if taken:
            row[list(taken)] = -1.0
        j = int(row.argmax())
        if float(row[j]) >= iou:
            taken.add(j)
            pairs += 1
            worst = max(worst, float((a["boxes"][i] - b["boxes"][j]).abs().max()))
    return pairs, worst


def export_detector(
    model: Exportable,
    path: str | Path,
    *,
    format: str = "onnx",
    calibration: Any = None,
    eval_images: Any = None,
    eval_targets: Any = None,
    max_map_drop: float | None = None,
    opset: int = 17,
    seed: int = 0,
) -> DetectionExportReport:
    """Export a detector's fused network to ONNX (fp32 or static INT8) and check its boxes.

    :func:`nasforge.deploy.export` calls this for a detector; the arguments are its own (see the
    module docstring for what fails and what warns).

    Raises:
        ConfigError: a format other than onnx / int8, INT8 without calibration images, a ``path``
            that cannot be written, ``eval_targets`` not one per check image, an fp32 export whose
            maps differ from PyTorch by more than 1e-4, or an INT8 mAP drop above ``max_map_drop``.
    """
    if format not in DETECTION_FORMATS:
        raise ConfigError(
            f"a detector exports to {' or '.join(DETECTION_FORMATS)}, got format={format!r} "
            "(TorchScript cannot trace a network that returns a dict of maps)"
        )
    if format == "int8" and calibration is None:
        raise ConfigError(
            "INT8 export needs calibration images (a few hundred training images): pass calibration=..."
        )
    if max_map_drop is not None and (
        isinstance(max_map_drop, bool) or not isinstance(max_map_drop, int | float) or max_map_drop < 0
    ):
        raise ConfigError(f"max_map_drop must be a number >= 0, got {max_map_drop!r}")
    final = check_writable_file(path, what="export file")
    # written beside the target and moved there once checked: a rejected INT8 export leaves an
    # earlier file of that name as it was
    partial = final.with_name(f".{final.name}.partial.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's TorchScript-based ONNX exporter
            report = _export(model, partial, format, calibration, eval_images, eval_targets, opset, seed)
        drop = report.map_drop
        if format == "int8" and max_map_drop is not None and drop is not None and drop > max_map_drop:
            raise ConfigError(
                f"the INT8 export of {model!r} loses {drop:.4f} mAP (> max_map_drop {max_map_drop}); "
                f"nothing was written to {final}. Calibrate on more or more representative images, or "
                "ship fp32 ONNX"
            )
        partial.replace(final)
        report.path = final
    finally:
        partial.unlink(missing_ok=True)
    if (
        format == "onnx" and report.max_abs_diff > FP32_TOLERANCE
    ):  # as for a classifier: written, and distrusted
        raise ConfigError(
            f"the onnx export of {model!r} differs from PyTorch by up to {report.max_abs_diff:.2e} in its "
            f"output maps (> {FP32_TOLERANCE}); {final} was written but should not be trusted"
        )
    if report.warning:
        warnings.warn(report.warning, ExportQualityWarning, stacklevel=3)
    return report


def _targets(eval_targets: Any, n: int) -> list[dict[str, Any]]:
    items = list(eval_targets)
    if len(items) != n:
        raise ConfigError(f"eval_targets has {len(items)} entries for {n} images (one per image)")
    for i, t in enumerate(items):
        if not (isinstance(t, dict) and "boxes" in t and "labels" in t):
            raise ConfigError(
                f"eval_targets[{i}] must be a dict with 'boxes' and 'labels', got {type(t).__name__}"
            )
    return items


def _export(
    model: Exportable,
    path: Path,
    format: str,
    calibration: Any,
    eval_images: Any,
    eval_targets: Any,
    opset: int,
    seed: int,
) -> DetectionExportReport:
    import torch

    from nasforge.detect import coco_map
    from nasforge.hardware._export import _check_batch, _export_onnx, _quantize, _run_onnx_all

    start = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = _check_batch(model, calibration if eval_images is None else eval_images, 32, seed)
    calib = _check_batch(model, calibration, 32, seed) if calibration is not None else batch
    targets = _targets(eval_targets, len(batch)) if eval_targets is not None else None
    stride = int(getattr(model.module, "stride", 1))
    _, h, w = model.pipeline.input_shape
    model.module.eval()
    with torch.no_grad():
        raw = model.module(model.pipeline.normalize(batch))
    expected = [raw[name].numpy() for name in OUTPUTS]
    fp32 = path if format == "onnx" else path.with_name(path.stem + ".fp32.onnx")
    meta = {"nasforge.stride": str(stride), "nasforge.outputs": json.dumps(list(OUTPUTS))}
    _export_onnx(_maps_network(model), model, batch[:1], fp32, opset, OUTPUTS, meta)
    if format == "int8":
        try:
            _quantize(fp32, path, calib)
        finally:
            fp32.unlink(missing_ok=True)
    got = _run_onnx_all(path, batch)
    diff = max((float(np.max(np.abs(g - e))) for g, e in zip(got, expected, strict=True)), default=0.0)
    ours = decode_maps(raw, stride, (h, w), **CHECK_DECODE)
    theirs = decode_maps(got, stride, (h, w), **CHECK_DECODE)
    pairs, worst, n_ours, n_theirs = 0, 0.0, 0, 0
    for a, b in zip(ours, theirs, strict=True):
        matched, far = match_boxes(a, b)
        pairs, worst = pairs + matched, max(worst, far)
        n_ours, n_theirs = n_ours + len(a["boxes"]), n_theirs + len(b["boxes"])
    most = max(n_ours, n_theirs)
    report = DetectionExportReport(
        path=path,
        format=format,
        max_abs_diff=diff,
        box_match=pairs / most if most else 1.0,
        box_max_diff=worst,
        n_checked=len(batch),
        n_boxes={"pytorch": n_ours, "exported": n_theirs},
    )
    if targets is not None:
        num_classes = int(expected[0].shape[1])
        scores = {}
        for who, maps in (("pytorch", raw), ("exported", got)):
            found = coco_map(
                decode_maps(maps, stride, (h, w), **MAP_DECODE), targets, num_classes, backend="numpy"
            )
            scores[who] = {"map": round(float(found["map"]), 6), "map_50": round(float(found["map_50"]), 6)}
        report.map = scores
    report.seconds = round(time.perf_counter() - start, 3)
    if format == "int8":
        doubts = []
        if report.box_match < INT8_MIN_MATCH:
            doubts.append(f"only {report.box_match:.1%} of the boxes match PyTorch's at IoU>=0.5")
        drop = report.map_drop
        if drop is not None and drop > INT8_MAX_MAP_DROP:
            doubts.append(f"mAP drops by {drop:.4f}")
        if doubts:
            report.warning = (
                f"INT8 quantisation changed the detector: {' and '.join(doubts)}; check it on your images "
                "before deploying (more calibration images help; fp32 ONNX keeps the boxes)"
            )
    return report
