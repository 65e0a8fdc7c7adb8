"""scikit-learn's 8x8 handwritten digits: a tiny real dataset that needs no download."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nasforge.data._pipeline import normalize
from nasforge.data._task import Task, check_fraction, stratified_split
from nasforge.errors import ConfigError

# scikit-learn's loader and torch are imported on first use, so that `import nasforge` stays light.
if TYPE_CHECKING:
    import torch

__all__ = ["load_digits"]

_MAX_PIXEL = 16.0  # the digits images count pen strokes per 4x4 block: values 0..16


def load_digits(
    root: str | Path | None = None,
    *,
    fraction: float = 1.0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    download: bool = False,
) -> Task:
    """Load the 1,797 8x8 digit images that ship with scikit-learn as a :class:`Task`.

    The images are split train / val / test with a seeded stratified split, scaled to [0, 1] and
    normalised with the mean and standard deviation of the training split.

    Args:
        root: ignored; accepted so every loader has the same signature.
        fraction: keep this stratified share of the training split, in (0, 1].
        val_fraction: share of all images used for validation, in [0, 1).
        test_fraction: share of all images used for testing, in [0, 1).
        seed: seeds the split and the training subset.
        download: ignored; the data ships with scikit-learn.

    Returns:
        The Task, images of shape (N, 1, 8, 8); with the defaults 1,077 / 360 / 360 images.

    Raises:
        ConfigError: if a fraction is out of range or nothing is left for training.

    Example:
        >>> load_digits(seed=1).describe()
        'digits: 1,077 train / 360 val / 360 test, 1x8x8, 10 classes'
    """
    del root, download  # uniform signature with the loaders that read files
    check_fraction("fraction", fraction, allow_zero=False, allow_one=True)
    check_fraction("val_fraction", val_fraction, allow_zero=True, allow_one=False)
    check_fraction("test_fraction", test_fraction, allow_zero=True, allow_one=False)
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 to leave images for training, got "
            f"{val_fraction} + {test_fraction}"
        )
    import torch
    from sklearn.datasets import load_digits as sklearn_load_digits  # lazy: both are slow to import

    bunch = sklearn_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[:, None, :, :] / np.float32(_MAX_PIXEL)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train, val, test = stratified_split(
        labels, (1.0 - val_fraction - test_fraction, val_fraction, test_fraction), seed
    )
    mean = float(images[train].mean())
    std = float(images[train].std())
    normalised = normalize(torch.from_numpy(images), (mean,), (std,))
    targets = torch.from_numpy(labels)

    def split(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(index)
        return normalised[rows].contiguous(), targets[rows].contiguous()

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split(train), split(val), split(test)
    task = Task(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(int(c)) for c in bunch.target_names),
        mean=(mean,),
        std=(std,),
        source="sklearn.datasets.load_digits",
    )
    return task.with_fraction(fraction, seed=seed)
