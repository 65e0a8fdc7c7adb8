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
from nasforge.errors import UnknownComponentError
from nasforge.registry import DATASETS, check_options

__all__ = [
    "DETECTION_DATASETS",
    "DetectionTask",
    "Task",
    "available",
    "download",
    "is_detection_dataset",
    "load",
    "load_detection",
    "load_task",
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


def is_detection_dataset(name: str) -> bool:
    """Whether ``name`` is a detection dataset (:data:`DETECTION_DATASETS`) rather than a
    classification one (:data:`nasforge.registry.DATASETS`).

    Example:
        >>> is_detection_dataset("shapes-det"), is_detection_dataset("digits")
        (True, False)
    """
    return isinstance(name, str) and name in DETECTION_DATASETS


def load_task(
    name: str,
    root: str | Path | None = None,
    *,
    fraction: float = 1.0,
    seed: int = 0,
    download: bool = False,
    **options: Any,
) -> Task | DetectionTask:
    """Load a classification :class:`Task` or, for a detection dataset name, a :class:`DetectionTask`.

    What a search config's ``data:`` section and ``nasforge train`` load: :func:`load` for the
    names of :data:`nasforge.registry.DATASETS`, :func:`load_detection` for those of
    :data:`DETECTION_DATASETS` (``root`` is the IDX directory of ``mnist-det`` / ``fashion-det``,
    else ``$NASFORGE_DATA_DIR``; the folder of ``yolo``; the JSON file of ``coco``). For
    detection, ``seed`` seeds the loader and ``fraction`` keeps a seeded random share of the
    training images (:meth:`DetectionTask.with_fraction`); ``download`` is passed on only when
    true (``mnist-det`` / ``fashion-det`` take it).

    Raises:
        UnknownComponentError: ``name`` is neither (with a did-you-mean suggestion).
        ConfigError: an option the loader does not take, or a value out of range.
        DataError: the data is missing or corrupt.
    """
    from nasforge.registry import DATASETS, suggest

    if not is_detection_dataset(name):
        if name not in DATASETS:  # name both kinds: the user may have meant either
            valid, detection = DATASETS.names(), sorted(DETECTION_DATASETS)
            raise UnknownComponentError(
                f"unknown dataset '{name}'.{suggest(name, valid + detection)} "
                f"Valid dataset names: {', '.join(valid)}; detection: {', '.join(detection)}."
            )
        return load(name, root, fraction=fraction, seed=seed, download=download, **options)
    if download:
        options["download"] = True
    task = load_detection(name, root, seed=seed, **options)
    return task.with_fraction(fraction, seed=seed) if fraction != 1 else task


def available() -> list[str]:
    """The registered dataset names (aliases excluded), sorted."""
    return DATASETS.names()
