"""Using a searched model: loading (by path or zoo name), inference on images, export.

The model type is what training returns (:class:`Model`; :class:`~nasforge.deploy.Detector` for
detection) and the ``.nasforge`` file format is :func:`save_model` / :func:`load`; exported graphs
are checked against PyTorch (:func:`export`). The export names are resolved on first access (they
live in :mod:`nasforge.hardware`, which imports torch), so that ``import nasforge`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasforge.data._pipeline import ImageSizeWarning
from nasforge.deploy._calibrate import calibration_images
from nasforge.deploy._export import check_images
from nasforge.deploy._model import load, load_detector
from nasforge.deploy._profile import profile_model
from nasforge.estimate._model import Model, Prediction, Predictions
from nasforge.estimate._model_file import FORMAT, save_model

if TYPE_CHECKING:
    from nasforge.estimate._detector import Detector
    from nasforge.hardware._export import FORMATS, ExportReport, export

__all__ = [
    "FORMAT",
    "FORMATS",
    "Detector",
    "ExportReport",
    "ImageSizeWarning",
    "Model",
    "Prediction",
    "Predictions",
    "calibration_images",
    "check_images",
    "export",
    "load",
    "load_detector",
    "profile_model",
    "save_model",
]

_LAZY = {
    **{name: "nasforge.hardware._export" for name in ("FORMATS", "ExportReport", "export")},
    **{name: "nasforge.estimate._detector" for name in ("Detector",)},
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nasforge.deploy' has no attribute {name!r}")
