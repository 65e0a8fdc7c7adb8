"""Object detection (issue 23): box operations, COCO mAP, an anchor-free head, loaded detectors and results.

Searchable through the ``detector`` space and the ``train_det`` estimator; a trained detector is
saved as a ``.nasforge`` file that :func:`nasforge.load` returns as a :class:`Detector`, exported
to ONNX by :func:`nasforge.deploy.export` and run from it by :class:`nasforge.deploy.OnnxDetector`;
see ``docs/detection.md``. Detection data
lives in :mod:`nasforge.data` (:class:`~nasforge.data.DetectionTask`, :func:`~nasforge.data.load_detection`).

Example:
    >>> import torch
    >>> from nasforge.detect import box_iou, coco_map
    >>> box_iou(torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([[2.0, 0, 6, 4]])).item()
    0.3333333432674408
"""

from __future__ import annotations

from nasforge.detect._boxes import (
    BOX_FORMATS,
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    cxcywh_to_xyxy,
    nms,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from nasforge.detect._centernet import (
    CenterNet,
    CenterNetHead,
    centernet_loss,
    centernet_targets,
    decode_centernet,
    tiny_backbone,
)
from nasforge.detect._map import coco_map
from nasforge.detect._results import Boxes, Results

__all__ = [
    "BOX_FORMATS",
    "Boxes",
    "CenterNet",
    "CenterNetHead",
    "Results",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "centernet_loss",
    "centernet_targets",
    "coco_map",
    "cxcywh_to_xyxy",
    "decode_centernet",
    "nms",
    "tiny_backbone",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]
