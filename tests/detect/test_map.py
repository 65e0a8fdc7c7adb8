"""COCO mAP: the numpy version by hand and against pycocotools / faster-coco-eval on random fixtures."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from nasforge.detect import coco_map
from nasforge.errors import ConfigError

LIBRARIES = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            importlib.util.find_spec(module) is None, reason=f"{name} is not installed (pip install {name})"
        ),
    )
    for name, module in (("pycocotools", "pycocotools"), ("faster-coco-eval", "faster_coco_eval"))
]


def test_hand_computed_average_precision() -> None:
    # One class, two ground-truth boxes in two images, three detections:
    #   0.9 matches image 0's box (IoU 1), 0.8 is a false positive, 0.7 matches image 1's box (IoU 0.6).
    targets = [
        {"boxes": [[0, 0, 10, 10]], "labels": [0]},
        {"boxes": [[0, 0, 10, 10]], "labels": [0]},
    ]
    preds = [
        {"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "scores": [0.9, 0.8], "labels": [0, 0]},
        {"boxes": [[0, 0, 10, 6]], "scores": [0.7], "labels": [0]},
    ]
    result = coco_map(preds, targets, num_classes=1, backend="numpy")
    # At IoU <= 0.6: precision 1, 1/2, 2/3 at recall .5, .5, 1 -> interpolated 1 up to recall .5 (51 points),
    # then 2/3 (50 points): AP = (51 + 50 * 2/3) / 101. Above 0.6 only the first box counts: 51 / 101.
    ap_low, ap_high = (51 + 50 * 2 / 3) / 101, 51 / 101
    assert result["map_50"] == pytest.approx(ap_low)
    assert result["map_75"] == pytest.approx(ap_high)
    assert result["map"] == pytest.approx((3 * ap_low + 7 * ap_high) / 10)  # thresholds .5, .55, .6 are "low"
    assert result["per_class"] == {0: pytest.approx(result["map"])}


def test_classes_without_ground_truth_are_left_out_and_missed_classes_score_zero() -> None:
    targets = [{"boxes": [[0, 0, 4, 4], [5, 5, 9, 9]], "labels": [0, 2]}]
    preds = [{"boxes": [[0, 0, 4, 4], [5, 5, 9, 9]], "scores": [0.5, 0.5], "labels": [0, 1]}]
    result = coco_map(preds, targets, num_classes=3, backend="numpy")
    assert set(result["per_class"]) == {0, 2}  # class 1 has no ground truth
    assert result["per_class"][2] == 0.0  # class 2 was never detected
    assert result["map"] == pytest.approx(0.5)
    empty = coco_map([{"boxes": [], "scores": [], "labels": []}], [{"boxes": [], "labels": []}], 2)
    assert empty["map"] == 0.0 and empty["per_class"] == {}


def test_bad_inputs_say_what_is_wrong() -> None:
    good = [{"boxes": [[0, 0, 1, 1]], "labels": [0]}]
    with pytest.raises(ConfigError, match="one prediction per target image"):
        coco_map([], good, 1)
    with pytest.raises(
        ConfigError, match=r"predictions\[0\] must be a mapping with keys boxes, scores, labels"
    ):
        coco_map(good, good, 1)
    with pytest.raises(ConfigError, match=r"targets\[0\]\['boxes'\] must have shape \(K, 4\), got \(1, 3\)"):
        coco_map([{"boxes": [], "scores": [], "labels": []}], [{"boxes": [[0, 0, 1]], "labels": [0]}], 1)
    with pytest.raises(ConfigError, match=r"targets\[0\] has labels outside 0\.\.0"):
        coco_map([{"boxes": [], "scores": [], "labels": []}], [{"boxes": [[0, 0, 1, 1]], "labels": [3]}], 1)
    with pytest.raises(ConfigError, match="backend must be one of"):
        coco_map(good, good, 1, backend="torchmetrics")


def random_fixture(seed: int, n_images: int = 30, num_classes: int = 4) -> tuple[list[dict], list[dict]]:
    """Ground truth plus jittered, missing and spurious detections with distinct random scores."""
    rng = np.random.default_rng(seed)
    targets, preds = [], []
    for _ in range(n_images):
        k = int(rng.integers(0, 6))
        xy = rng.uniform(0, 80, (k, 2))
        wh = rng.uniform(4, 30, (k, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        labels = rng.integers(0, num_classes - 1, k)  # the last class never has ground truth
        targets.append({"boxes": boxes, "labels": labels})
        keep = rng.random(k) < 0.8
        jitter = rng.normal(0, 0.08, (k, 4)) * wh.mean(axis=1, keepdims=True)
        det = (boxes + jitter)[keep]
        det_labels = np.where(rng.random(k) < 0.9, labels, rng.integers(0, num_classes, k))[keep]
        n_fp = int(rng.integers(0, 4))
        fp_xy = rng.uniform(0, 80, (n_fp, 2))
        fp = np.concatenate([fp_xy, fp_xy + rng.uniform(4, 30, (n_fp, 2))], axis=1)
        det = np.concatenate([det, fp])
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 0.5)
        preds.append(
            {
                "boxes": det,
                "labels": np.concatenate([det_labels, rng.integers(0, num_classes, n_fp)]),
                "scores": rng.random(len(det)),
            }
        )
    return preds, targets


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_agrees_with_the_coco_library(library: str, seed: int) -> None:
    preds, targets = random_fixture(seed)
    ours = coco_map(preds, targets, num_classes=4, backend="numpy")
    theirs = coco_map(preds, targets, num_classes=4, backend=library)
    assert theirs["backend"] == library and ours["backend"] == "numpy"
    assert 0.2 < ours["map"] < 0.9  # a fixture where matching matters
    for key in ("map", "map_50", "map_75"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9), key
    assert ours["per_class"].keys() == theirs["per_class"].keys() == {0, 1, 2}
    for k, ap in ours["per_class"].items():
        assert ap == pytest.approx(theirs["per_class"][k], abs=1e-9)


@pytest.mark.parametrize("library", LIBRARIES)
def test_max_dets_truncates_like_the_library(library: str) -> None:
    preds, targets = random_fixture(5, n_images=10)
    for pred in preds:  # many low-scoring duplicates per image
        pred["boxes"] = np.concatenate([pred["boxes"]] * 4)
        pred["labels"] = np.concatenate([pred["labels"]] * 4)
        pred["scores"] = np.concatenate(
            [pred["scores"], pred["scores"] / 2, pred["scores"] / 3, pred["scores"] / 4]
        )
    ours = coco_map(preds, targets, num_classes=4, max_dets=2, backend="numpy")
    theirs = coco_map(preds, targets, num_classes=4, max_dets=2, backend=library)
    assert ours["map"] == pytest.approx(theirs["map"], abs=1e-9)
    assert ours["map"] != pytest.approx(coco_map(preds, targets, num_classes=4, backend="numpy")["map"])
