"""YOLO-format folders and COCO-JSON files read into DetectionTasks, and their malformed-label errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.data import load_detection
from nasforge.data._own import DataNotice
from nasforge.errors import ConfigError
from nasforge.testing._detection import make_coco_file, make_yolo_folder

NAMES = ["cat", "dog"]


def test_a_yolo_folder_becomes_a_detection_task(tmp_path: Path) -> None:
    task = load_detection("yolo", make_yolo_folder(tmp_path / "pets"), seed=1)
    assert task.name == "pets" and task.class_names == ("cat", "dog")
    assert task.input_shape == (3, 20, 30)
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (6, 2, 2)
    all_boxes = task.boxes_train + task.boxes_val + task.boxes_test
    assert sorted(len(b) for b in all_boxes) == [0, 0] + [1] * 8
    box = next(b for b in all_boxes if len(b))
    assert box.tolist() == [[7.5, 5.0, 22.5, 15.0]]  # (0.25..0.75) of 30 x 20 pixels


def test_split_folders_classes_txt_and_resizing(tmp_path: Path) -> None:
    root = make_yolo_folder(tmp_path / "d", splits=True, names="txt")
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(root / "images" / "train" / "big.png")
    (root / "labels" / "train" / "big.txt").write_text("1 0.5 0.5 1.0 1.0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = load_detection("yolo", root, test_fraction=0.0, channels=1)
    assert any("1 of 11 images resized to 20x30" in str(w.message) for w in caught)
    assert task.input_shape == (1, 20, 30) and len(task.x_val) == 3 and len(task.x_test) == 0
    assert [[0.0, 0.0, 30.0, 20.0]] in [b.tolist() for b in task.boxes_train]
    with pytest.warns(DataNotice, match="11 of 11 images resized to 10x15"):
        sized = load_detection("yolo", root, size=(10, 15), test_fraction=0.0)
    assert sized.input_shape == (3, 10, 15)
    assert [[0.0, 0.0, 15.0, 10.0]] in [b.tolist() for b in sized.boxes_train]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2 0.5 0.5 0.2 0.2", "im0.txt:2: class 2 is not an integer in 0..1"),
        ("0 0.5 0.5 0.2", "im0.txt:2: expected 5 columns 'cls cx cy w h', got 4"),
        ("0 0.9 0.5 0.4 0.2", "im0.txt:2: box cx=0.9 cy=0.5 w=0.4 h=0.2 is outside the image"),
        ("0 0.5 0.5 0 0.2", "im0.txt:2: box"),
        ("a 0.5 0.5 0.2 0.2", "im0.txt:2: columns must be numbers"),
        ("0.5 0.5 0.5 0.2 0.2", "im0.txt:2: class 0.5 is not an integer"),
    ],
)
def test_bad_yolo_label_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    root = make_yolo_folder(tmp_path / "d")
    (root / "labels" / "im0.txt").write_text(f"0 0.5 0.5 0.5 0.5\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_detection("yolo", root)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_yolo_label_without_image_and_missing_names(tmp_path: Path) -> None:
    root = make_yolo_folder(tmp_path / "d")
    (root / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    with pytest.raises(ConfigError, match=r"ghost.txt:1: no image named ghost\.\* in"):
        load_detection("yolo", root)
    (root / "labels" / "ghost.txt").unlink()
    (root / "data.yaml").unlink()
    with pytest.raises(ConfigError, match=r"no class names; add data\.yaml"):
        load_detection("yolo", root)


def test_a_coco_file_becomes_a_detection_task(tmp_path: Path) -> None:
    task = load_detection("coco", make_coco_file(tmp_path), val_fraction=0.2, test_fraction=0.1, seed=0)
    assert task.name == "ann" and task.class_names == ("cat", "dog")  # ordered by category id
    assert task.input_shape == (1, 20, 30)
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (7, 2, 1)
    boxes = torch.cat(task.boxes_train + task.boxes_val + task.boxes_test)
    assert boxes.shape == (10, 4)  # the crowd annotation is skipped
    assert boxes[0].tolist() == [1.0, 2.0, 11.0, 7.0]
    labels = torch.cat(task.labels_train + task.labels_val + task.labels_test)
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["annotations"][2].update(bbox=[25, 2, 10, 5]),
            "annotations[2] (id 2): bbox [25, 2, 10, 5] is outside",
        ),
        (
            lambda d: d["annotations"][1].update(category_id=5),
            "annotations[1] (id 1): category_id 5 is not in",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=1),
            "annotations[0] (id 0): image_id 1 is not in 'images'",
        ),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "bbox must be [x, y, width, height]"),
        (lambda d: d["images"][3].update(file_name="img/nope.png"), "image id 103: file"),
        (lambda d: d.pop("categories"), "needs the lists 'images', 'annotations' and 'categories'"),
        (lambda d: d["images"][0].update(width=0), "image id 100: width and height must be positive numbers"),
    ],
)
def test_bad_coco_annotations_name_file_and_annotation(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    path = make_coco_file(tmp_path)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_detection("coco", path)
    assert message in str(info.value) and "ann.json" in str(info.value)


def test_coco_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match=r"x\.json: not valid JSON"):
        load_detection("coco", path)
