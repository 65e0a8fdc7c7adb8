"""Every registered detection dataset loads from a small fixture into a valid, deterministic task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.data import DETECTION_DATASETS, load_detection
from nasforge.errors import ConfigError
from nasforge.testing._detection import (
    check_detection_task,
    make_coco_file,
    make_yolo_folder,
    write_idx_dataset,
)


def _idx(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = rng.integers(1, 255, (40, 16, 12))
    labels = np.arange(40) % 10
    return write_idx_dataset(tmp_path / "idx", images[:30], labels[:30], images[30:], labels[30:])


SMALL = {"n_train": 6, "n_val": 3, "n_test": 3, "size": 40, "max_size": 20}
# name -> (tmp_path -> root, options)
FIXTURES: dict[str, tuple[Callable[[Path], Any], dict[str, Any]]] = {
    "shapes-det": (lambda tmp: None, SMALL),
    "mnist-det": (_idx, SMALL),
    "fashion-det": (_idx, SMALL),
    "yolo": (lambda tmp: make_yolo_folder(tmp / "yolo", n=12), {}),
    "coco": (lambda tmp: make_coco_file(tmp / "coco", n=12), {}),
}


def test_every_registered_detection_dataset_has_a_fixture() -> None:
    assert set(FIXTURES) == set(DETECTION_DATASETS)


@pytest.mark.parametrize("name", sorted(DETECTION_DATASETS))
def test_loads_into_a_valid_deterministic_task(name: str, tmp_path: Path) -> None:
    make_root, options = FIXTURES[name]
    root = make_root(tmp_path)
    task = load_detection(name, root, seed=3, **options)
    check_detection_task(task)
    again = load_detection(name, root, seed=3, **options)
    assert torch.equal(task.x_train, again.x_train)
    assert all(torch.equal(a, b) for a, b in zip(task.boxes_val, again.boxes_val, strict=True))
    with pytest.raises(ConfigError, match=f"detection dataset '{name}' has no option 'bogus'"):
        load_detection(name, root, bogus=1)
