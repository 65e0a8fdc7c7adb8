"""COCO-style mean average precision: mAP@[.5:.95], mAP@.5 and mAP@.75, in numpy or through a COCO library.

The numpy version follows ``pycocotools.cocoeval`` step by step for boxes without crowd regions or
area ranges: per image and class, detections sorted by score (top ``max_dets``) are greedily matched
to the unmatched ground-truth box of highest IoU at or above each threshold ``.50:.05:.95``; per
class, precision is made non-increasing and read at 101 recall points ``0:.01:1``; classes without
ground truth are left out of the mean. With ``backend="auto"`` the result comes from
``pycocotools`` or ``faster-coco-eval`` when one is installed (``pip install 'nasforge[detect]'``),
else from numpy; the test suite checks that both agree.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import ConfigError

__all__ = ["IOU_THRESHOLDS", "RECALL_THRESHOLDS", "coco_map"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
_BACKENDS = ("auto", "numpy", "pycocotools", "faster-coco-eval")

Image = dict[str, np.ndarray]  # "boxes" (K, 4) xyxy, "labels" (K,), and "scores" (K,) for predictions


def _as_array(value: Any, dtype: type, shape: tuple[int, ...], where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array: np.ndarray = np.asarray(value, dtype=dtype)
    if array.size == 0:
        array = array.reshape((0, *shape[1:]))
    if array.ndim != len(shape) or any(s != -1 and a != s for a, s in zip(array.shape, shape, strict=True)):
        wanted = ", ".join("K" if s == -1 else str(s) for s in shape)
        raise ConfigError(f"{where} must have shape ({wanted}), got {array.shape}")
    return array


def _images(items: Sequence[Mapping[str, Any]], what: str, with_scores: bool) -> list[Image]:
    out = []
    for i, item in enumerate(items):
        keys = ("boxes", "scores", "labels") if with_scores else ("boxes", "labels")
        if not isinstance(item, Mapping) or any(k not in item for k in keys):
            raise ConfigError(f"{what}[{i}] must be a mapping with keys {', '.join(keys)}")
        image = {
            "boxes": _as_array(item["boxes"], np.float64, (-1, 4), f"{what}[{i}]['boxes']"),
            "labels": _as_array(item["labels"], np.int64, (-1,), f"{what}[{i}]['labels']"),
        }
        if with_scores:
            image["scores"] = _as_array(item["scores"], np.float64, (-1,), f"{what}[{i}]['scores']")
        if any(len(v) != len(image["boxes"]) for v in image.values()):
            raise ConfigError(
                f"{what}[{i}]: boxes, labels{' and scores' if with_scores else ''} differ in length"
            )
        out.append(image)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match(ious: np.ndarray) -> np.ndarray:
    """(T, D) bool: whether each detection (in score order) matches a ground-truth box at each threshold."""
    n_det, n_gt = ious.shape
    matched = np.zeros((len(IOU_THRESHOLDS), n_det), bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(n_gt, bool)
        for d in range(n_det):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(n_gt):
                if taken[g] or ious[d, g] < best_iou:
                    continue
                best, best_iou = g, ious[d, g]
            if best >= 0:
                taken[best] = True
                matched[t, d] = True
    return matched


def _precision_numpy(preds: list[Image], targets: list[Image], num_classes: int, max_dets: int) -> np.ndarray:
    """Precision at (IoU threshold, recall point, class); -1 for classes without ground truth."""
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), num_classes))
    for k in range(num_classes):
        scores, matches, n_gt = [], [], 0
        for pred, target in zip(preds, targets, strict=True):
            gt = target["boxes"][target["labels"] == k]
            n_gt += len(gt)
            mine = pred["labels"] == k
            order = np.argsort(-pred["scores"][mine], kind="mergesort")[:max_dets]
            det, det_scores = pred["boxes"][mine][order], pred["scores"][mine][order]
            if len(det) == 0:
                continue
            scores.append(det_scores)
            matches.append(
                _match(_iou(det, gt)) if len(gt) else np.zeros((len(IOU_THRESHOLDS), len(det)), bool)
            )
        if n_gt == 0:
            continue
        precision[:, :, k] = 0.0
        if not scores:
            continue
        order = np.argsort(-np.concatenate(scores), kind="mergesort")
        tp = np.concatenate(matches, axis=1)[:, order]
        tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
        fp_sum = np.cumsum(~tp, axis=1, dtype=np.float64)
        for t in range(len(IOU_THRESHOLDS)):
            recall = tp_sum[t] / n_gt
            prec = tp_sum[t] / (tp_sum[t] + fp_sum[t] + np.spacing(1))
            prec = np.maximum.accumulate(prec[::-1])[::-1]  # the best precision at this recall or beyond
            index = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
            valid = index < len(prec)
            precision[t, valid, k] = prec[index[valid]]
    return precision


def _precision_library(
    module: str, preds: list[Image], targets: list[Image], num_classes: int, max_dets: int
) -> np.ndarray:
    if module == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator

    def xywh(b: np.ndarray) -> list[float]:
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    annotations: list[dict[str, Any]] = []
    for i, target in enumerate(targets):
        for b, y in zip(target["boxes"], target["labels"], strict=True):
            area = float((b[2] - b[0]) * (b[3] - b[1]))
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(y) + 1, "bbox": xywh(b),
                 "area": area, "iscrowd": 0}
            )  # fmt: skip
    detections = [
        {"image_id": i + 1, "category_id": int(y) + 1, "bbox": xywh(b), "score": float(s)}
        for i, pred in enumerate(preds)
        for b, y, s in zip(pred["boxes"], pred["labels"], pred["scores"], strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": [{"id": i + 1} for i in range(len(targets))],
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)],
        }
        gt.createIndex()
        evaluator = Evaluator(gt, gt.loadRes(detections), "bbox")
        # evaluate() sorts maxDets, so look ours up by value afterwards
        evaluator.params.maxDets = sorted({1, 10, max_dets})
        evaluator.evaluate()
        evaluator.accumulate()
    # (T, R, K, area ranges, maxDets): area "all", ours
    return np.asarray(evaluator.eval["precision"])[:, :, :, 0, list(evaluator.params.maxDets).index(max_dets)]


def _backend(name: str) -> str:
    import importlib.util

    if name not in _BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(_BACKENDS)}, got {name!r}")
    modules = {"pycocotools": "pycocotools", "faster-coco-eval": "faster_coco_eval"}
    if name == "auto":
        return next((b for b, m in modules.items() if importlib.util.find_spec(m) is not None), "numpy")
    if name != "numpy" and importlib.util.find_spec(modules[name]) is None:
        raise ImportError(f"backend {name!r} needs: pip install 'nasforge[detect]' (or pip install {name})")
    return name


def coco_map(
    predictions: Sequence[Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]],
    num_classes: int,
    *,
    max_dets: int = 100,
    backend: str = "auto",
) -> dict[str, Any]:
    """COCO box mAP of ``predictions`` against ``targets``, one entry per image.

    Args:
        predictions: per image a mapping with ``boxes`` ``(K, 4)`` xyxy, ``scores`` ``(K,)`` and
            ``labels`` ``(K,)`` (numpy arrays, tensors or lists).
        targets: per image a mapping with ``boxes`` and ``labels``.
        num_classes: labels are in ``0..num_classes-1``.
        max_dets: detections kept per image and class, by score (COCO's 100).
        backend: ``"auto"`` (a COCO library if installed, else numpy), ``"numpy"``, ``"pycocotools"``
            or ``"faster-coco-eval"``.

    Returns:
        ``{"map": mAP@[.5:.95], "map_50": mAP@.5, "map_75": mAP@.75, "per_class": {label: AP@[.5:.95]},
        "backend": the backend used}``; classes without ground truth are not in ``per_class`` nor the
        means, and the means are 0.0 when no class has ground truth.

    Raises:
        ConfigError: if the inputs are malformed or ``backend`` is unknown.
        ImportError: if the named library backend is not installed.

    Example:
        >>> gt = [{"boxes": [[0, 0, 10, 10]], "labels": [0]}]
        >>> pred = [{"boxes": [[0, 0, 10, 9]], "scores": [0.9], "labels": [0]}]
        >>> round(coco_map(pred, gt, num_classes=1, backend="numpy")["map_50"], 6)
        1.0
    """
    used = _backend(backend)
    if len(predictions) != len(targets):
        raise ConfigError(f"need one prediction per target image, got {len(predictions)} and {len(targets)}")
    preds, gts = _images(predictions, "predictions", True), _images(targets, "targets", False)
    for what, images in (("predictions", preds), ("targets", gts)):
        for i, image in enumerate(images):
            if len(image["labels"]) and (image["labels"].min() < 0 or image["labels"].max() >= num_classes):
                raise ConfigError(f"{what}[{i}] has labels outside 0..{num_classes - 1}")
    if used != "numpy" and not any(len(p["boxes"]) for p in preds):
        used = "numpy"  # the COCO libraries refuse an empty result list; numpy gives the same zeros
    if used == "numpy":
        precision = _precision_numpy(preds, gts, num_classes, max_dets)
    else:
        precision = _precision_library(used, preds, gts, num_classes, max_dets)
    has_gt: np.ndarray = np.asarray((precision > -1).any(axis=(0, 1)))

    def mean(p: np.ndarray) -> float:
        return float(p[..., has_gt].mean()) if has_gt.any() else 0.0

    return {
        "map": mean(precision),
        "map_50": mean(precision[0]),
        "map_75": mean(precision[5]),
        "per_class": {k: float(precision[:, :, k].mean()) for k in range(num_classes) if has_gt[k]},
        "backend": used,
    }
