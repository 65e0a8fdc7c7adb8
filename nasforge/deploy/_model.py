"""Loading a model to use it: ``nasforge.load(path or zoo name)(images)``.

The model type is the one training returns (:class:`~nasforge.estimate.Model`, or a
:class:`~nasforge.deploy.Detector`), and the ``.nasforge`` file format is
:mod:`nasforge.estimate._model_file`; this module finds the file (a path or a zoo name) and puts
the network on the device it should run on.

Example:
    >>> import nasforge as nf  # doctest: +SKIP
    >>> model = nf.load("runs/digits-evolution/model.nasforge")  # doctest: +SKIP
    >>> model("seven.png")[0].top1  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.data._pipeline import image_files
from nasforge.errors import CheckpointError
from nasforge.estimate._model import TrainedNetwork
from nasforge.estimate._model_file import read_model

if TYPE_CHECKING:
    from nasforge.estimate._detector import Detector

__all__ = ["describe_sources", "load", "load_detector"]

#: folders expanded into their image files (the name ``nasforge predict`` imports)
describe_sources = image_files


def load(source: str | Path, *, device: str = "cpu") -> TrainedNetwork:
    """Load a model from a ``.nasforge`` file or by zoo name.

    Args:
        source: a path (a search writes ``<run_dir>/model.nasforge``), or the name of a model in
            the zoo shipped with nasforge (``"digits-s"``, ``"mnist-s"``, ``"fashion-mnist-s"``;
            ``nasforge zoo`` lists them). An existing file of that name wins over a zoo name.
        device: where the network runs: ``cpu`` (default: export and CPU profiling expect it),
            ``auto``, ``cuda``, ``cuda:N`` or ``mps``; images are moved there and the
            predictions come back to the CPU.

    Returns:
        a :class:`~nasforge.estimate.Model` (a classifier), or a :class:`~nasforge.deploy.Detector`
        for a detector file.

    Raises:
        ConfigError: a device this machine does not have (before the file is read).
        CheckpointError: the file is missing (and no zoo model has that name), truncated, of
            another format, or its weights do not fit its architecture.
    """
    from nasforge import zoo
    from nasforge._device import resolve_device

    where = resolve_device(device)
    path = Path(source)
    if not path.is_file():
        zoo_path = zoo.path_of(str(source))
        if zoo_path is None:
            names = ", ".join(e.name for e in zoo.entries()) or "none installed"
            raise CheckpointError(
                f"no model file {str(source)!r} and no zoo model of that name; give the path of a "
                f"'.nasforge' file (a search with a final training writes <run_dir>/model.nasforge) "
                f"or a zoo name ({names})"
            )
        path = zoo_path
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{source} is an ONNX export; nasforge.load reads .nasforge files. Run an exported detector "
            "with nasforge.deploy.OnnxDetector(path), a classifier with onnxruntime.InferenceSession "
            "(input 'pixels': raw pixels (N, C, H, W) in [0, 1])"
        )
    model = read_model(path)
    if where.type != "cpu":
        model.module.to(where)
    return model


def load_detector(source: str | Path) -> Detector:
    """:func:`nasforge.load`, checking that the file holds a detector.

    Raises:
        CheckpointError: the file cannot be read, or holds a classification model.
    """
    from nasforge.estimate._detector import Detector  # torch, on first use

    model = load(source)
    if not isinstance(model, Detector):
        raise CheckpointError(
            f"{source} is a classification model ({len(model.class_names)} classes, task: classification), "
            "not a detector: call it for class probabilities (model(images)[0].top1), or give a detector "
            "file (train_detector(...).save)"
        )
    return model
