"""DetectionTask validation and the generated detection datasets (shapes-det, mnist-det, fashion-det)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import DetectionTask, load_detection
from nasforge.data._det_synth import load_mnist_det, load_shapes_det
from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.testing._detection import write_idx_dataset

SHARED = Path(os.environ.get("NASFORGE_TEST_DATASETS", "/work/shared/datasets"))


def _task(**changes: object) -> DetectionTask:
    fields: dict[str, object] = dict(
        name="t",
        x_train=torch.zeros(2, 1, 10, 20),
        boxes_train=[torch.tensor([[0.0, 0.0, 20.0, 10.0]]), torch.zeros(0, 4)],
        labels_train=[torch.tensor([1]), torch.zeros(0, dtype=torch.int64)],
        x_val=torch.zeros(0, 1, 10, 20),
        boxes_val=[],
        labels_val=[],
        x_test=torch.zeros(1, 1, 10, 20),
        boxes_test=[torch.tensor([[2.0, 3.0, 4.0, 5.0]])],
        labels_test=[torch.tensor([0])],
        class_names=["a", "b"],
        mean=[0.5],
        std=[0.25],
    )
    fields.update(changes)
    return DetectionTask(**fields)  # type: ignore[arg-type]


def test_a_valid_task_describes_itself() -> None:
    task = _task()
    assert task.input_shape == (1, 10, 20) and task.num_classes == 2
    assert task.describe() == "t: 2 train / 0 val / 1 test, 1x10x20, 2 classes, 2 boxes"
    x, boxes, labels = task.split("test")
    assert x.shape == (1, 1, 10, 20) and boxes[0].tolist() == [[2, 3, 4, 5]] and labels[0].tolist() == [0]
    assert isinstance(task.boxes_train, tuple) and task.class_names == ("a", "b")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"boxes_train": [torch.zeros(0, 4)]}, "x_train has 2 images but boxes_train has 1"),
        ({"boxes_test": [torch.tensor([[2.0, 3.0, 21.0, 5.0]])]}, "test image 0: box 0"),
        ({"boxes_test": [torch.tensor([[4.0, 3.0, 2.0, 5.0]])]}, "is not xyxy inside the 20x10 image"),
        (
            {
                "boxes_train": [
                    torch.tensor([[0.0, 0, 1, 1]]),
                    torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 11]]),
                ],
                "labels_train": [torch.tensor([0]), torch.tensor([0, 1])],
            },
            "train image 1: box 1 = [0.0, 0.0, 1.0, 11.0]",
        ),
        (
            {
                "labels_train": [torch.tensor([1]), torch.zeros(0, dtype=torch.int64)],
                "labels_test": [torch.tensor([-1])],
            },
            "test image 0: labels -1..-1",
        ),
        ({"boxes_test": [torch.tensor([[2, 3, 4, 5]])]}, "boxes must be a float32 tensor of shape (K, 4)"),
        ({"labels_test": [torch.tensor([2])]}, "labels 2..2, but there are 2 classes"),
        ({"labels_test": [torch.tensor([0, 1])]}, "1 boxes but 2 labels"),
        ({"labels_test": [torch.tensor([0], dtype=torch.int32)]}, "labels must be an int64 tensor"),
        ({"x_val": torch.zeros(0, 1, 10, 10)}, "x_val images have shape (1, 10, 10)"),
        ({"mean": [0.5, 0.5]}, "mean and std need one value per channel (1)"),
        ({"std": [0.0]}, "std finite and > 0"),
        ({"class_names": []}, "class_names must be a non-empty tuple"),
        (
            {"x_train": torch.zeros(0, 1, 10, 20), "boxes_train": [], "labels_train": []},
            "training split is empty",
        ),
    ],
)
def test_inconsistent_tasks_are_refused_with_the_reason(changes: dict[str, object], message: str) -> None:
    with pytest.raises(DataError) as info:
        _task(**changes)
    assert message in str(info.value)


def test_with_fraction_keeps_images_and_their_boxes_together() -> None:
    task = load_shapes_det(n_train=40, n_val=2, n_test=2, size=32, max_size=12, seed=3)
    small = task.with_fraction(0.25, seed=1)
    assert len(small.x_train) == len(small.boxes_train) == len(small.labels_train) == 10
    index = next(i for i in range(40) if torch.equal(task.x_train[i], small.x_train[0]))
    assert torch.equal(task.boxes_train[index], small.boxes_train[0])
    assert small.x_val is task.x_val


def test_with_resolution_scales_images_and_boxes() -> None:
    task = _task()
    half = task.with_resolution((5, 10))
    assert half.input_shape == (1, 5, 10) and half.x_val.shape == (0, 1, 5, 10)
    assert half.boxes_train[0].tolist() == [[0, 0, 10, 5]] and half.boxes_test[0].tolist() == [
        [1, 1.5, 2, 2.5]
    ]
    assert half.labels_test is task.labels_test
    assert task.with_resolution((10, 20)) is task
    assert task.with_resolution(40).boxes_test[0].tolist() == [[4, 12, 8, 20]]
    with pytest.raises(ConfigError, match="resolution must be an int or"):
        task.with_resolution(0)


def test_shapes_det_is_deterministic_and_boxes_are_tight() -> None:
    task = load_shapes_det(n_train=24, n_val=8, n_test=8, seed=7)
    again = load_shapes_det(n_train=24, n_val=8, n_test=8, seed=np.random.default_rng(7))
    assert torch.equal(task.x_train, again.x_train)
    assert all(torch.equal(a, b) for a, b in zip(task.boxes_test, again.boxes_test, strict=True))
    other = load_shapes_det(n_train=24, n_val=8, n_test=8, seed=8)
    assert not torch.equal(task.x_train, other.x_train)
    # The validation canvases do not depend on the size of the training split (only their
    # normalisation does, which uses the training statistics).
    longer = load_shapes_det(n_train=30, n_val=8, n_test=8, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(task.boxes_val, longer.boxes_val, strict=True))

    assert task.input_shape == (3, 64, 64) and task.class_names == ("circle", "square", "triangle")
    counts = [len(b) for b in task.boxes_train]
    assert min(counts) >= 1 and max(counts) <= 4
    labels = torch.cat(task.labels_train + task.labels_val + task.labels_test)
    assert set(labels.tolist()) == {0, 1, 2}
    sides = torch.cat(task.boxes_train)
    w, h = sides[:, 2] - sides[:, 0], sides[:, 3] - sides[:, 1]
    assert float(torch.minimum(w, h).min()) >= 7 and float(torch.maximum(w, h).max()) <= 24
    # Squares fill their whole box; circles and triangles cover part of it.
    pixels = task.x_train * torch.tensor(task.std)[:, None, None] + torch.tensor(task.mean)[:, None, None]
    for i, (boxes, labels_i) in enumerate(zip(task.boxes_train, task.labels_train, strict=True)):
        for (x1, y1, x2, y2), c in zip(boxes.int().tolist(), labels_i.tolist(), strict=True):
            inside = pixels[i, :, y1:y2, x1:x2]
            assert inside.shape[1:] == (y2 - y1, x2 - x1)
            if c == 1:  # a flat bright colour fills the square: every pixel is brighter than the background
                assert float(inside.max(dim=0).values.min()) > 0.4


def test_generated_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="min_size <= max_size <= size - 2"):
        load_shapes_det(size=16, max_size=24)
    with pytest.raises(ConfigError, match="n_train must be an integer >= 1"):
        load_shapes_det(n_train=0)
    with pytest.raises(ConfigError, match=r"seed must be an int or a numpy\.random\.Generator"):
        load_shapes_det(seed="x")  # type: ignore[arg-type]
    with pytest.raises(UnknownComponentError, match="Did you mean 'shapes-det'"):
        load_detection("shape-det")
    with pytest.raises(ConfigError, match="has no option 'n_trian'"):
        load_detection("shapes-det", n_trian=3)


def _idx_dir(name: str) -> Path:
    directory = SHARED / name
    if not (directory / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{name} IDX files not found in {directory} (set NASFORGE_TEST_DATASETS to their parent)")
    return directory


def test_mnist_det_boxes_are_tight_around_the_ink() -> None:
    directory = _idx_dir("mnist")
    task = load_mnist_det(directory, n_train=60, n_val=20, n_test=20, seed=1)
    assert task.input_shape == (1, 64, 64) and task.num_classes == 10 and task.source == str(directory)
    pixels = task.x_test * task.std[0] + task.mean[0]
    boxes = torch.cat(task.boxes_test)
    longer = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert float(longer.min()) >= 10 and float(longer.max()) <= 32
    for i, image_boxes in enumerate(task.boxes_test):
        ink = pixels[i, 0] > 1e-3
        covered = torch.zeros_like(ink)
        for x1, y1, x2, y2 in image_boxes.int().tolist():
            crop = ink[y1:y2, x1:x2]
            # tight: every border row and column of the box holds ink
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            covered[y1:y2, x1:x2] = True
        assert not (ink & ~covered).any()  # no ink outside the boxes

    again = load_mnist_det(directory, n_train=60, n_val=20, n_test=20, seed=1)
    assert torch.equal(task.x_test, again.x_test)


def test_pasted_canvases_draw_test_digits_from_t10k_only(tmp_path: Path) -> None:
    """Test images all '7', training images all '1': test canvases hold only 7s, the others only 1s."""
    rng = np.random.default_rng(0)
    blob = np.zeros((28, 28), np.uint8)
    blob[8:20, 10:18] = 200
    noisy = np.stack([blob + rng.integers(0, 5, (28, 28)).astype(np.uint8) * (blob > 0)] * 50)
    directory = write_idx_dataset(
        tmp_path / "mnist", noisy, np.full(50, 1), np.stack([blob] * 20), np.full(20, 7)
    )
    task = load_mnist_det(directory, n_train=10, n_val=5, n_test=5, size=48, seed=0)
    assert {int(y) for y in torch.cat(task.labels_test)} == {7}
    assert {int(y) for y in torch.cat(task.labels_train + task.labels_val)} == {1}
    boxes = torch.cat(task.boxes_test)
    # an 8x12 ink block resized so its longer side is 12..32: aspect 2:3 kept
    ratio = (boxes[:, 2] - boxes[:, 0]) / (boxes[:, 3] - boxes[:, 1])
    assert float((ratio - 2 / 3).abs().max()) < 0.15


def test_fashion_det_uses_fashion_class_names() -> None:
    directory = _idx_dir("fashion-mnist")
    task = load_detection("fashion-det", directory, n_train=8, n_val=4, n_test=4, size=48, max_size=20)
    assert task.class_names[-1] == "Ankle boot" and task.input_shape == (1, 48, 48)
    assert dataclasses.replace(task, name="x").name == "x"  # still a valid task after replace


def test_missing_idx_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing in"):
        load_mnist_det(tmp_path, n_train=2, n_val=0, n_test=0)
