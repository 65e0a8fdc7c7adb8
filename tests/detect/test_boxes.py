"""Box conversions, IoU and NMS against values computed by hand."""

from __future__ import annotations

import pytest
import torch

from nasforge.detect import (
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

XYXY = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 1.0, 3.0]])


def test_conversions_by_hand_and_round_trips() -> None:
    assert xyxy_to_xywh(XYXY).tolist() == [[10, 20, 20, 40], [0, 0, 1, 3]]
    assert xyxy_to_cxcywh(XYXY).tolist() == [[20, 40, 20, 40], [0.5, 1.5, 1, 3]]
    assert torch.equal(xywh_to_xyxy(xyxy_to_xywh(XYXY)), XYXY)
    assert torch.equal(cxcywh_to_xyxy(xyxy_to_cxcywh(XYXY)), XYXY)
    assert box_convert(torch.tensor([20.0, 40, 20, 40]), "cxcywh", "xywh").tolist() == [10, 20, 20, 40]
    assert box_convert(XYXY[None], "xyxy", "xyxy").shape == (1, 2, 4)  # any leading dimensions
    with pytest.raises(ValueError, match="box format must be one of xyxy, xywh, cxcywh, got 'xy'"):
        box_convert(XYXY, "xy", "xyxy")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\), got \(2, 3\)"):
        xyxy_to_xywh(torch.zeros(2, 3))


def test_area_and_iou_by_hand() -> None:
    assert box_area(XYXY).tolist() == [800, 3]
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 4, 4], [5, 5, 5, 9]])  # the last is empty (width 0)
    b = torch.tensor([[1.0, 1, 3, 3], [0, 0, 4, 4], [10, 10, 12, 12]])
    expected = torch.tensor(
        [
            [1 / 7, 4 / 16, 0],  # 1 shared pixel of 4 + 4 - 1; the small box inside the big one
            [4 / 16, 1, 0],
            [0, 0, 0],  # empty boxes overlap nothing, and do not divide by zero
        ]
    )
    torch.testing.assert_close(box_iou(a, b), expected)
    torch.testing.assert_close(box_iou(b, a), expected.T)
    assert box_iou(a, torch.zeros(0, 4)).shape == (3, 0)


def test_nms_keeps_the_best_of_each_overlapping_group() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0, 10, 10],  # 0.6
            [1, 0, 11, 10],  # 0.9: IoU with box 0 = 90 / 110 = 0.818
            [20, 20, 30, 30],  # 0.5, alone
            [0, 0, 10, 5],  # 0.8: IoU with box 1 = 45 / 105 = 0.43, with box 0 = 0.5
        ]
    )
    scores = torch.tensor([0.6, 0.9, 0.5, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]  # box 0 goes (0.818 > 0.5 with box 1)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]  # box 3 also goes (0.43 > 0.3)
    assert nms(boxes, scores, 0.9).tolist() == [1, 3, 0, 2]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    tied = nms(torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1]]), torch.tensor([0.5, 0.5]), 0.5)
    assert tied.tolist() == [0]  # ties go to the lower index
    with pytest.raises(ValueError, match=r"scores must have shape \(4,\)"):
        nms(boxes, scores[:2], 0.5)


def test_batched_nms_suppresses_only_within_a_class() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [100, 100, 110, 110]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 1, 0])
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [0, 2, 3]
    assert batched_nms(boxes, scores, torch.zeros(4, dtype=torch.int64), 0.5).tolist() == [0, 3]
    assert (
        batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5).tolist() == []
    )
