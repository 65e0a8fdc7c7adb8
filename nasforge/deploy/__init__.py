"""Using a searched model: the ``.nasforge`` file format, loading, and inference on images."""

from nasforge.deploy._model import FORMAT, Model, Prediction, Predictions, load, save_model

__all__ = ["FORMAT", "Model", "Prediction", "Predictions", "load", "save_model"]
