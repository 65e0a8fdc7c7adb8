"""Datasets as :class:`Task` records: train / val / test tensors, class names and normalisation.

Datasets are resolved by name through :data:`nasforge.registry.DATASETS`: ``"digits"`` ships with
scikit-learn; ``"mnist"`` and ``"fashion-mnist"`` are read from IDX files in a directory
(``root=``, ``--data-dir`` or ``$NASFORGE_DATA_DIR``) and can be downloaded with checksums verified.

Example:
    >>> from nasforge.data import load
    >>> task = load("digits", fraction=0.5, seed=1)
    >>> task.describe()
    'digits: 539 train / 360 val / 360 test, 1x8x8, 10 classes'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasforge.data._detection import DETECTION_DATASETS, DetectionTask, load_detection
from nasforge.data._idx import download
from nasforge.data._idxfile import read_idx
from nasforge.data._task import Task, stratified_split
from nasforge.registry import DATASETS, check_options

__all__ = [
    "DETECTION_DATASETS",
    "DetectionTask",
    "Task",
    "available",
    "download",
    "load",
    "load_detection",
    "read_idx",
    "stratified_split",
]


def load(
    name: str,
    root: str | Path | None = None,
    *,
    fraction: float = 1.0,
    seed: int = 0,
    download: bool = False,
    **options: Any,
) -> Task:
    """Load the dataset registered as ``name``.

    Args:
        name: a registered dataset name or alias (see :func:`available`).
        root: the directory holding the dataset's files; ignored by datasets that ship with a package.
        fraction: keep this stratified share of the training split, in (0, 1].
        seed: seeds the train / val (/ test) split and the training subset.
        download: fetch missing files instead of failing.
        **options: further keyword arguments of that dataset's loader (``val_fraction``, ``verify``).

    Returns:
        The Task.

    Raises:
        UnknownComponentError: if ``name`` is not registered (with a did-you-mean suggestion).
        ConfigError: if an option is not accepted by the loader, or a value is out of range.
        DataError: if the data is missing or corrupt.
    """
    loader = DATASETS.get(name)
    check_options("dataset", DATASETS.canonical_name(name), loader, options)
    return loader(root, fraction=fraction, seed=seed, download=download, **options)


def available() -> list[str]:
    """The registered dataset names (aliases excluded), sorted."""
    return DATASETS.names()
