"""An anchor-free CenterNet-style detector: a heatmap of object centres per class, plus size and offset.

Zhou et al., "Objects as Points" (2019): on a feature map of stride ``s`` the head predicts, per
class, a heatmap whose peaks are object centres, and per pixel the box size and the sub-pixel
offset of the centre. Training targets splat a Gaussian (CornerNet radius, min IoU 0.7) at each
centre; the loss is the penalty-reduced focal loss on the heatmap plus L1 on size and offset at the
centres. Decoding keeps 3×3 local maxima, takes the top ``k``, and (here) runs class-wise NMS.

Boxes are ``xyxy`` in input pixels throughout, as in :class:`~nasforge.data.DetectionTask`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.detect._boxes import batched_nms, cxcywh_to_xyxy
from nasforge.nn._blocks import ConvBN, K1KXBlock, RepVGGBlock
from nasforge.nn._layers import make_activation

__all__ = [
    "CenterNet",
    "CenterNetHead",
    "centernet_loss",
    "centernet_targets",
    "decode_centernet",
    "gaussian_radius",
    "tiny_backbone",
]

Device = torch.device | str | None
_PRIOR = 0.1  # initial foreground probability of the heatmap (CenterNet's bias -2.19)


class CenterNetHead(nn.Module):
    """Three small branches on one feature map: ``heatmap`` (classes), ``size`` (w, h) and ``offset`` (x, y).

    Each branch is ``depth`` times (3×3 conv → activation), then a 1×1 conv. Sizes and offsets are
    in feature-map cells.

    Args:
        in_channels: channels of the feature map.
        num_classes: heatmap channels.
        width: channels of the branches' hidden layers.
        act: an :data:`~nasforge.nn.ACTIVATIONS` name.
        depth: hidden 3×3 layers per branch (the first is named ``hidden``, the next ``hidden1``, ...).
        device: where to create the parameters.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        width: int = 32,
        act: str = "relu",
        depth: int = 1,
        device: Device = None,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes=}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth=}")

        def branch(out: int) -> nn.Sequential:
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(depth):
                suffix = str(i) if i else ""
                layers["hidden" + suffix] = nn.Conv2d(
                    in_channels if i == 0 else width, width, 3, padding=1, device=device
                )
                layers["act" + suffix] = make_activation(act)
            layers["out"] = nn.Conv2d(width, out, 1, device=device)
            return nn.Sequential(layers)

        self.heatmap, self.size, self.offset = branch(num_classes), branch(2), branch(2)
        with torch.no_grad():
            out = self.heatmap.out
            assert isinstance(out, nn.Conv2d) and out.bias is not None
            out.bias.fill_(-math.log((1 - _PRIOR) / _PRIOR))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return ``heatmap`` logits ``(N, C, h, w)``, ``size`` and ``offset`` (both ``(N, 2, h, w)``)."""
        return {
            "heatmap": self.heatmap(features),
            "size": self.size(features),
            "offset": self.offset(features),
        }


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CornerNet's radius: how far a centre may move while a box of this size keeps IoU >= ``min_overlap``."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def centernet_targets(
    boxes: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    num_classes: int,
    out_size: tuple[int, int],
    stride: int,
) -> dict[str, torch.Tensor]:
    """Training targets on a ``(h, w)`` feature map of ``stride`` for a batch of images.

    Args:
        boxes: per image ``(K, 4)`` xyxy in input pixels.
        labels: per image ``(K,)`` class ids.
        num_classes: heatmap channels.
        out_size: ``(h, w)`` of the feature map.
        stride: input pixels per feature-map cell.

    Returns:
        ``heatmap`` ``(N, C, h, w)`` in [0, 1] with 1 exactly at centres, ``size`` and ``offset``
        ``(N, 2, h, w)`` in cells, and ``mask`` ``(N, 1, h, w)``, 1 at the centre cells.
    """
    h, w = out_size
    n = len(boxes)
    heatmap = torch.zeros(n, num_classes, h, w)
    size = torch.zeros(n, 2, h, w)
    offset = torch.zeros(n, 2, h, w)
    mask = torch.zeros(n, 1, h, w)
    ys, xs = torch.arange(h, dtype=torch.float32)[:, None], torch.arange(w, dtype=torch.float32)[None, :]
    for i, (image_boxes, image_labels) in enumerate(zip(boxes, labels, strict=True)):
        for box, label in zip(image_boxes.tolist(), image_labels.tolist(), strict=True):
            x1, y1, x2, y2 = (v / stride for v in box)
            bw, bh = x2 - x1, y2 - y1
            if bw <= 0 or bh <= 0:
                continue
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            col, row = min(int(cx), w - 1), min(int(cy), h - 1)
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw))))
            sigma = (2 * radius + 1) / 6
            blob = torch.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma * sigma))
            heatmap[i, label] = torch.maximum(heatmap[i, label], blob)
            size[i, :, row, col] = torch.tensor([bw, bh])
            offset[i, :, row, col] = torch.tensor([cx - col, cy - row])
            mask[i, 0, row, col] = 1.0
    return {"heatmap": heatmap, "size": size, "offset": offset, "mask": mask}


def centernet_loss(
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    *,
    size_weight: float = 0.1,
    offset_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Penalty-reduced focal loss on the heatmap (alpha 2, beta 4) plus L1 on size and offset at the centres.

    Each term is divided by the number of objects (at least 1).

    Returns:
        ``loss`` (the weighted sum, to back-propagate) and its parts ``heatmap``, ``size``, ``offset``.
    """
    logits, target = outputs["heatmap"], targets["heatmap"]
    mask = targets["mask"]
    n_objects = mask.sum().clamp(min=1)
    p = torch.sigmoid(logits)
    positive = target.eq(1).float()
    pos = F.logsigmoid(logits) * (1 - p) ** 2 * positive
    neg = F.logsigmoid(-logits) * p**2 * (1 - target) ** 4 * (1 - positive)
    heat = -(pos.sum() + neg.sum()) / n_objects
    size = (F.l1_loss(outputs["size"], targets["size"], reduction="none") * mask).sum() / n_objects
    offset = (F.l1_loss(outputs["offset"], targets["offset"], reduction="none") * mask).sum() / n_objects
    return {
        "loss": heat + size_weight * size + offset_weight * offset,
        "heatmap": heat,
        "size": size,
        "offset": offset,
    }


def decode_centernet(
    outputs: dict[str, torch.Tensor],
    stride: int,
    image_size: tuple[int, int],
    *,
    max_dets: int = 100,
    score_threshold: float = 0.05,
    iou_threshold: float | None = 0.6,
) -> list[dict[str, torch.Tensor]]:
    """Turn head outputs into per-image detections: 3×3 peaks → top ``max_dets`` → boxes → class-wise NMS.

    Args:
        outputs: the head's ``heatmap`` logits, ``size`` and ``offset``.
        stride: input pixels per feature-map cell.
        image_size: ``(H, W)`` of the input, to clip boxes.
        max_dets: peaks kept per image.
        score_threshold: peaks below this score are dropped.
        iou_threshold: class-wise NMS threshold, or None to skip NMS.

    Returns:
        Per image ``boxes`` ``(K, 4)`` xyxy in input pixels, ``scores`` ``(K,)``, ``labels`` ``(K,)``,
        by decreasing score.
    """
    heat = torch.sigmoid(outputs["heatmap"])
    n, c, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, index = peaks.reshape(n, -1).topk(min(max_dets, c * h * w))
    labels, cell = index // (h * w), index % (h * w)
    rows, cols = cell // w, cell % w
    limit = torch.tensor([image_size[1], image_size[0]] * 2, dtype=heat.dtype)
    results = []
    for i in range(n):
        size = outputs["size"][i].reshape(2, -1)[:, cell[i]].T.clamp(min=0)
        offset = outputs["offset"][i].reshape(2, -1)[:, cell[i]].T
        centres = torch.stack((cols[i], rows[i]), dim=1).to(heat.dtype) + offset
        boxes = cxcywh_to_xyxy(torch.cat((centres, size), dim=1) * stride)
        boxes = torch.minimum(boxes.clamp(min=0), limit)
        keep = scores[i] >= score_threshold
        boxes, image_scores, image_labels = boxes[keep], scores[i][keep], labels[i][keep]
        if iou_threshold is not None:
            kept = batched_nms(boxes, image_scores, image_labels, iou_threshold)
            boxes, image_scores, image_labels = boxes[kept], image_scores[kept], image_labels[kept]
        results.append({"boxes": boxes, "scores": image_scores, "labels": image_labels})
    return results


def tiny_backbone(
    in_channels: int, width: int = 16, *, act: str = "relu", device: Device = None
) -> nn.Sequential:
    """A small stride-4 backbone of the new blocks: 3×3 ConvBN stem /2 → k1kx /2 → QARepVGG → k1kx (5×5).

    Returns a module mapping ``(N, in_channels, H, W)`` to ``(N, 2 * width, H / 4, W / 4)``; it stands in
    for a searched backbone until detector spaces exist.
    """
    return nn.Sequential(
        OrderedDict(
            stem=ConvBN(in_channels, width, 3, 2, device=device),
            stem_act=make_activation(act),
            down=K1KXBlock(width, 2 * width, 3, 2, act=act, device=device),
            rep=RepVGGBlock(2 * width, 2 * width, act=act, variant="qarep", device=device),
            k1kx=K1KXBlock(2 * width, 2 * width, 5, 1, act=act, device=device),
        )
    )


class CenterNet(nn.Module):
    """A backbone whose output feature map has ``stride``, followed by a :class:`CenterNetHead`.

    Args:
        backbone: maps ``(N, C, H, W)`` images to ``(N, feature_channels, H / stride, W / stride)``.
        feature_channels: the backbone's output channels.
        num_classes: number of classes.
        stride: the backbone's total stride.
        head_width: hidden channels of the head's branches.
        head_depth: hidden layers of the head's branches.
        act: activation of the head.

    Example:
        >>> model = CenterNet(tiny_backbone(3, 8), 16, num_classes=3, stride=4)
        >>> outputs = model(torch.zeros(2, 3, 32, 32))
        >>> outputs["heatmap"].shape
        torch.Size([2, 3, 8, 8])
        >>> len(model.predict(torch.zeros(2, 3, 32, 32)))
        2
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_channels: int,
        num_classes: int,
        *,
        stride: int,
        head_width: int = 32,
        head_depth: int = 1,
        act: str = "relu",
        device: Device = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = CenterNetHead(
            feature_channels, num_classes, width=head_width, depth=head_depth, act=act, device=device
        )
        self.num_classes = num_classes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head outputs for a batch of images (see :meth:`CenterNetHead.forward`)."""
        return self.head(self.backbone(x))

    def loss(
        self, x: torch.Tensor, boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The CenterNet loss of a batch: ``loss`` to back-propagate, and its parts."""
        outputs = self(x)
        h, w = outputs["heatmap"].shape[2:]
        targets = centernet_targets(boxes, labels, self.num_classes, (int(h), int(w)), self.stride)
        return centernet_loss(outputs, targets)

    @torch.no_grad()
    def predict(
        self,
        x: torch.Tensor,
        *,
        max_dets: int = 100,
        score_threshold: float = 0.05,
        iou_threshold: float | None = 0.6,
    ) -> list[dict[str, torch.Tensor]]:
        """Detections per image (see :func:`decode_centernet`); switches to eval mode and back."""
        was_training = self.training
        self.eval()
        try:
            outputs = self(x)
        finally:
            self.train(was_training)
        size = (int(x.shape[2]), int(x.shape[3]))
        return decode_centernet(
            outputs,
            self.stride,
            size,
            max_dets=max_dets,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
        )
