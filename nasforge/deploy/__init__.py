"""Using a searched model: loading (by path or zoo name), inference on images, export.

The model type is what training returns (:class:`Model`; :class:`~nasforge.deploy.Detector` for
detection) and the ``.nasforge`` file format is :func:`save_model` / :func:`load`; exported graphs
are checked against PyTorch (:func:`export`); an exported detector runs with :class:`OnnxDetector`.
The export names are resolved on first access (they live in :mod:`nasforge.hardware`, which imports
torch), so that ``import nasforge`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasforge.data._pipeline import ImageSizeWarning
from nasforge.deploy._calibrate import calibration_images
from nasforge.deploy._export import check_images, detection_check_images
from nasforge.deploy._model import load, load_detector
from nasforge.deploy._onnx import OnnxDetector
from nasforge.deploy._profile import profile_model
from nasforge.deploy._zoo import zoo_summaries
from nasforge.estimate._model import Model, Prediction, Predictions
from nasforge.estimate._model_file import FORMAT, save_model

if TYPE_CHECKING:
    from nasforge.estimate._detector import Detector
    from nasforge.hardware._export import FORMATS, ExportReport, export
    from nasforge.hardware._export_det import DetectionExportReport, ExportQualityWarning

__all__ = [
    "FORMAT",
    "FORMATS",
    "DetectionExportReport",
    "Detector",
    "ExportQualityWarning",
    "ExportReport",
    "ImageSizeWarning",
    "Model",
    "OnnxDetector",
    "Prediction",
    "Predictions",
    "calibration_images",
    "check_images",
    "detection_check_images",
    "export",
    "load",
    "load_detector",
    "profile_model",
    "save_model",
    "zoo_summaries",
]

_LAZY = {
    **{name: "nasforge.hardware._export" for name in ("FORMATS", "ExportReport", "export")},
    **{name: "nasforge.estimate._detector" for name in ("Detector",)},
    **{name: "nasforge.hardware._export_det" for name in ("DetectionExportReport", "ExportQualityWarning")},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasforge.deploy' has no attribute {name!r}")
