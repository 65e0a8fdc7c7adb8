"""Results and Boxes: Ultralytics' names and conversions, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.detect import Boxes, Results

NAMES = {0: "circle", 1: "square", 2: "triangle"}


def _results(tmp=None):
    image = np.zeros((50, 100, 3), dtype=np.uint8)
    data = torch.tensor(
        [[10.0, 5.0, 30.0, 25.0, 0.9, 1.0], [60.0, 10.0, 90.0, 40.0, 0.5, 1.0], [0, 0, 4, 4, 0.3, 0]]
    )
    return Results(image, "a.png", NAMES, data, {"preprocess": 1.0, "inference": 2.0, "postprocess": 0.5})


def test_box_formats_by_hand():
    b = _results().boxes
    assert b.xyxy[0].tolist() == [10, 5, 30, 25]
    assert b.xywh[0].tolist() == [20, 15, 20, 20]  # centre x, centre y, w, h, as Ultralytics
    assert b.xyxyn[0].tolist() == pytest.approx([0.1, 0.1, 0.3, 0.5])  # / (w=100, h=50)
    assert b.xywhn[1].tolist() == pytest.approx([0.75, 0.5, 0.3, 0.6])
    assert b.conf.tolist() == pytest.approx([0.9, 0.5, 0.3]) and b.cls.tolist() == [1, 1, 0]
    assert b.orig_shape == (50, 100) and len(b) == 3 and b.shape == (3, 6) and b.id is None
    assert len(b[0]) == 1 and b[1:].xyxy.shape == (2, 4)
    assert b.numpy().shape == (3, 6)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        Boxes(torch.zeros(2, 4), (1, 1))


def test_results_summaries():
    r = _results()
    assert r.orig_shape == (50, 100) and r.names == NAMES and len(r) == 3
    assert r.speed == {"preprocess": 1.0, "inference": 2.0, "postprocess": 0.5}
    assert r.verbose() == "1 circle, 2 squares, "
    records = json.loads(r.to_json())
    assert records[0] == {
        "name": "square",
        "class": 1,
        "confidence": 0.9,
        "box": {"x1": 10.0, "y1": 5.0, "x2": 30.0, "y2": 25.0},
    }
    assert json.loads(r.to_json(normalize=True))[0]["box"] == {"x1": 0.1, "y1": 0.1, "x2": 0.3, "y2": 0.5}
    empty = Results(np.zeros((4, 4, 3), np.uint8), "b.png", NAMES, torch.zeros(0, 6))
    assert (
        empty.verbose() == "(no detections), " and empty.to_json() == "[]" and "no detections" in repr(empty)
    )


def test_plot_draws_boxes_and_labels_and_save_writes_it(tmp_path):
    r = _results()
    image = r.plot()
    assert isinstance(image, Image.Image) and image.size == (100, 50)
    a = np.asarray(image)
    assert tuple(a[25, 20]) != (0, 0, 0)  # bottom edge of the first box
    assert tuple(a[21, 25]) == (0, 0, 0)  # its inside below the label stays untouched
    boxes_only = np.asarray(r.plot(labels=False))
    assert (boxes_only != 0).sum() < (a != 0).sum()  # labels add filled text boxes
    path = r.save(tmp_path / "out" / "a.png")
    assert Image.open(path).size == (100, 50)


def test_save_txt_writes_yolo_labels(tmp_path):
    r = _results()
    lines = Path(r.save_txt(tmp_path / "a.txt")).read_text().splitlines()
    assert lines[0] == "1 0.200000 0.300000 0.200000 0.400000"  # centre (20, 15), 20 x 20 in 100 x 50
    conf_lines = Path(r.save_txt(tmp_path / "b.txt", save_conf=True)).read_text().splitlines()
    assert conf_lines[1].endswith(" 0.500000") and len(conf_lines) == 3
