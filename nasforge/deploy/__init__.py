"""Using a searched model: the ``.nasforge`` file format, loading, and inference on images."""

from nasforge.deploy._calibrate import calibration_images
from nasforge.deploy._export import FORMATS, ExportReport, check_images, export
from nasforge.deploy._model import FORMAT, ImageSizeWarning, Model, Prediction, Predictions, load, save_model
from nasforge.deploy._profile import profile_model

__all__ = [
    "FORMAT",
    "FORMATS",
    "ExportReport",
    "ImageSizeWarning",
    "Model",
    "Prediction",
    "Predictions",
    "calibration_images",
    "check_images",
    "export",
    "load",
    "profile_model",
    "save_model",
]
