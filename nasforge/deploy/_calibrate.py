"""Calibration images for INT8 (``nasforge export --format int8``, ``nasforge profile --int8``).

Static INT8 quantization measures activation ranges on real images: by default the training
images of the data the model was trained on (its provenance names the dataset), or another
dataset's. One function, so the export and the profile calibrate alike. A detector calibrates on a
detection dataset (``shapes-det``, ``mnist-det``, ``yolo`` with ``data_dir``, ...: its test images
and boxes then check the export's mAP), or on a folder of unlabelled images (``folder``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    from nasforge.estimate._model import TrainedNetwork

__all__ = ["calibration_images"]


def calibration_images(
    model: TrainedNetwork,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    n: int = 512,
) -> dict[str, Any]:
    """``n`` calibration images and the test images of ``dataset`` (default: the model's).

    Args:
        model: the model to quantize; without ``dataset``, the dataset its provenance names.
        dataset: a dataset name (``folder`` and ``npz`` with ``data_dir``).
        data_dir: where that dataset's files are.
        download: download missing files (mnist, fashion-mnist).
        n: calibration images (seeded random training images).

    Returns:
        :func:`~nasforge.deploy.check_images`' options for :func:`~nasforge.deploy.export`:
        ``calibration`` and, when the data has a test split, ``eval_images`` / ``eval_labels``.

        For a detector, ``eval_targets`` (boxes and labels) instead of ``eval_labels``; with
        ``dataset="folder"`` (images of ``data_dir``, unlabelled), the calibration images only.

    Raises:
        ConfigError: no ``dataset`` and the model's training data is not a dataset name (an image
            folder or an .npz file cannot be found again from its name).
    """
    from nasforge import data as datasets
    from nasforge.deploy._export import check_images
    from nasforge.registry import DATASETS

    if model.task == "detection":
        return _detection_images(model, dataset, data_dir, download=download, n=n)
    name = dataset or str(model.provenance.get("dataset") or "")
    if dataset is None and name not in DATASETS:
        trained_on = f"it was trained on {name!r}, which is not a dataset name" if name else "it names none"
        raise ConfigError(
            f"INT8 calibrates on the model's training data, but {trained_on} (an image folder or "
            ".npz file?); give --dataset folder|npz --data-dir PATH (or another dataset's --dataset NAME)"
        )
    return check_images(datasets.load(name, data_dir, download=download), n)


def _detection_images(
    model: TrainedNetwork, dataset: str | None, data_dir: str | Path | None, *, download: bool, n: int
) -> dict[str, Any]:
    import numpy as np

    from nasforge.data import DETECTION_DATASETS, load_detection
    from nasforge.data._pipeline import image_files
    from nasforge.deploy._export import detection_check_images

    name = dataset or str(model.provenance.get("dataset") or "")
    valid = f"{', '.join(sorted(DETECTION_DATASETS))}, or folder (unlabelled images of --data-dir)"
    if name == "folder":
        if data_dir is None or not Path(data_dir).is_dir():
            raise ConfigError(
                f"--dataset folder calibrates on the images of --data-dir, got data_dir={data_dir!r}"
            )
        files = image_files([str(data_dir)])
        if not files:
            raise ConfigError(f"no image files (PNG, JPEG, ...) in {data_dir} to calibrate on")
        chosen = np.random.default_rng(0).permutation(len(files))[:n]
        return {"calibration": [files[i] for i in sorted(chosen)]}
    if name not in DETECTION_DATASETS:
        trained_on = (
            f"it was trained on {name!r}, which is not a detection dataset name" if name else "it names none"
        )
        raise ConfigError(
            f"INT8 calibrates on the detector's training data, but {trained_on}; give --dataset ({valid}) "
            "and --data-dir PATH"
        )
    options: dict[str, Any] = {"download": True} if download and name in ("mnist-det", "fashion-det") else {}
    return detection_check_images(load_detection(name, data_dir, **options), n)
