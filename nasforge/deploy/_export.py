"""Calibration and check images for exporting a model trained on a dataset.

The export itself (ONNX, INT8 ONNX, TorchScript, each checked against PyTorch) is
:func:`nasforge.hardware._export.export`, re-exported as :func:`nasforge.deploy.export`: the
hardware profiler times the same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.data import DetectionTask, Task

__all__ = ["check_images", "detection_check_images"]


def check_images(task: Task, calibration: int = 512, seed: int = 0) -> dict[str, Any]:
    """Calibration and check images for :func:`~nasforge.deploy.export` from a task, as pixels in [0, 1].

    Returns ``calibration`` (that many seeded random training images,
    :meth:`Task.calibration_images <nasforge.data.Task.calibration_images>`) and, when the task has
    a test split, ``eval_images`` / ``eval_labels`` (all test images), ready to pass as ``**options``.
    """
    options: dict[str, Any] = {"calibration": task.calibration_images(calibration, seed)}
    if len(task.x_test):
        options["eval_images"] = task.pipeline.denormalize(task.x_test)
        options["eval_labels"] = task.y_test.numpy()
    return options


def detection_check_images(task: DetectionTask, calibration: int = 512, seed: int = 0) -> dict[str, Any]:
    """:func:`check_images` for a detector: ``calibration`` training images and, when the task has
    a test split, ``eval_images`` with their ground truth ``eval_targets`` (one ``{"boxes",
    "labels"}`` per image), for the box check and the mAP of :func:`~nasforge.deploy.export`."""
    options: dict[str, Any] = {"calibration": task.calibration_images(calibration, seed)}
    if len(task.x_test):
        options["eval_images"] = task.pipeline.denormalize(task.x_test)
        options["eval_targets"] = [
            {"boxes": b, "labels": y} for b, y in zip(task.boxes_test, task.labels_test, strict=True)
        ]
    return options
