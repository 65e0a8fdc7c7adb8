"""Small detection data on disk for tests, and the checks every detection dataset loader must pass.

``make_yolo_folder``, ``make_coco_file`` and ``write_idx_dataset`` write tiny datasets in the formats
the loaders of :data:`nasforge.data.DETECTION_DATASETS` read; :func:`check_detection_task` asserts
what every :class:`~nasforge.data.DetectionTask` a loader returns must satisfy beyond its own
validation.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data import DetectionTask

__all__ = ["check_detection_task", "make_coco_file", "make_yolo_folder", "write_idx_dataset"]


def _write_image(path: Path, size: tuple[int, int], rgb: bool, seed: int) -> None:
    from PIL import Image

    h, w = size
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, (h, w, 3) if rgb else (h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_yolo_folder(
    root: str | Path,
    n: int = 10,
    *,
    splits: bool = False,
    names: str = "yaml",
    size: tuple[int, int] = (20, 30),
) -> Path:
    """Write a YOLO folder of ``n`` noise images of ``size`` (h, w); return ``root``.

    Image ``i`` has one box centred in the image, half its width and height, of class ``i % 2``
    (``cat`` / ``dog``), except every fourth image (``i % 4 == 3``), which has no label file. With
    ``splits`` the last three images go to ``images/val`` and the rest to ``images/train``. Class
    names go to ``data.yaml`` (``names="yaml"``) or ``classes.txt`` (``names="txt"``).
    """
    root = Path(root)
    for i in range(n):
        sub = ("train" if i < n - 3 else "val") if splits else ""
        _write_image(root / "images" / sub / f"im{i}.png", size, True, i)
        if i % 4 == 3:
            continue
        label = root / "labels" / sub / f"im{i}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"{i % 2} 0.5 0.5 0.5 0.5\n\n")
    if names == "yaml":
        (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n")
    else:
        (root / "classes.txt").write_text("cat\ndog\n")
    return root


def make_coco_file(root: str | Path, n: int = 10) -> Path:
    """Write ``root/ann.json`` and ``n`` grey 20x30 images in ``root/img/``; return the JSON path.

    Image ``i`` (id ``100 + i``) has one box ``[1, 2, 10, 5]`` (xywh) of category 7 (``dog``) for odd
    ``i``, else 3 (``cat``); image 100 also has a crowd annotation, which loaders skip.
    """
    root = Path(root)
    images, annotations = [], []
    for i in range(n):
        _write_image(root / "img" / f"{i}.png", (20, 30), False, i)
        images.append({"id": 100 + i, "file_name": f"img/{i}.png", "width": 30, "height": 20})
        annotations.append(
            {"id": i, "image_id": 100 + i, "category_id": 7 if i % 2 else 3, "bbox": [1, 2, 10, 5]}
        )
    annotations.append({"id": 99, "image_id": 100, "category_id": 3, "bbox": [0, 0, 30, 20], "iscrowd": 1})
    categories = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]
    path = root / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def write_idx_dataset(
    directory: str | Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
) -> Path:
    """Write the four gzip IDX files the MNIST / Fashion-MNIST loaders read (uint8); return directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in (
        ("train-images-idx3-ubyte", train_images),
        ("train-labels-idx1-ubyte", train_labels),
        ("t10k-images-idx3-ubyte", test_images),
        ("t10k-labels-idx1-ubyte", test_labels),
    ):
        data = np.asarray(array).astype(np.uint8)
        header = bytes([0, 0, 8, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
        with gzip.open(directory / f"{name}.gz", "wb") as f:
            f.write(header + data.tobytes())
    return directory


def check_detection_task(task: Any) -> None:
    """Assert what every detection loader's result must satisfy beyond DetectionTask's own validation.

    A DetectionTask of finite normalised images, with at least one box, the training split's
    channels roughly standardised (mean ~0, std ~1), and boxes of positive size.

    Raises:
        AssertionError: naming the failed property.
    """
    assert isinstance(task, DetectionTask), f"expected a DetectionTask, got {type(task).__name__}"
    import torch

    for split in ("train", "val", "test"):
        x, boxes, _ = task.split(split)
        assert bool(torch.isfinite(x).all()), f"{split} images hold NaN or inf"
        for b in boxes:
            assert bool(((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])).all()), f"{split}: a box of zero size"
    assert sum(len(b) for b in task.boxes_train) > 0, "the training split has no boxes"
    mean = task.x_train.mean(dim=(0, 2, 3))
    std = task.x_train.std(dim=(0, 2, 3))
    assert bool((mean.abs() < 1e-3).all()), f"training images are not centred: channel means {mean.tolist()}"
    assert bool(((std - 1).abs() < 1e-2).all()), (
        f"training images are not scaled: channel stds {std.tolist()}"
    )
