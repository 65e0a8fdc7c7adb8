"""The report of a detection run: mAP in place of accuracy, and the final model's boxes on test images."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import nasforge as nf
from nasforge.data import load_detection
from nasforge.estimate import DetectionTrainEstimator
from nasforge.experiment._rundir import RunDir
from nasforge.report import write_report
from nasforge.space import DetectorSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _space() -> DetectorSpace:
    return DetectorSpace(
        stem=[8],
        block={"depth": [1], "op": ["conv", "k1kx_rep"], "kernel": [3], "bottleneck": [0.5]},
        stages=[{"width": [8, 16]}, {"width": [16]}, {"width": [16]}],
        neck_width=[16],
        head_width=[16],
        head_depth=[1],
        scales=[2],
    )


@pytest.fixture(scope="module")
def det_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nf.Experiment]:
    """Two tiny trials of a detector search on shapes-det (32x32), as the docs show it."""
    task = load_detection("shapes-det", n_train=64, n_val=16, n_test=8, size=32, seed=0)
    run = tmp_path_factory.mktemp("det") / "run"
    exp = nf.Experiment("det", space=_space(), objectives=["val_map"], run_dir=run, seed=0)
    estimator = DetectionTrainEstimator(task, epochs=2, steps_per_epoch=2, batch_size=16, threads=1)
    exp.run("random", estimator, n_trials=2)
    return run, exp


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)">', html)


def _images(html: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(data)))
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    ]


def test_without_a_final_model_the_section_says_how_to_make_one(det_run):
    run, _ = det_run
    html = write_report(run).read_text()
    assert "Final detector (test split)" in html and "No final model" in html
    assert "accuracy" not in html.lower() and "confusion" not in html.lower()
    # the leaderboard shows the other mAP figures of each trial
    header = re.search(r'id="leaderboard-table"><thead><tr>(.*?)</tr>', html)
    assert header is not None and "val_map_50" in header.group(1)


def test_the_final_detector_with_boxes_on_test_images(det_run, tmp_path):
    run, exp = det_run
    task = load_detection("shapes-det", n_train=64, n_val=16, n_test=8, size=32, seed=0)
    best = exp.best()
    assert best is not None
    model = best.train(task, epochs=10, batch_size=16, lr=5e-3, threads=1)
    model.save(RunDir(run).model)
    out = tmp_path / "report"
    html = write_report(run, out_dir=out).read_text()
    assert "final" in _sections(html) and "No final model" not in html
    assert f"{model.metrics['test_map']:.4f}" in html and "test mAP@.5" in html
    assert 'id="detections"' in html and "shapes-det" in html
    drawn = sorted(p.name for p in out.glob("detections_*.png"))
    assert drawn == [f"detections_{i}.png" for i in range(1, 5)]
    pictures = [im for im in _images(html) if im.size == (192, 192)]  # 32x32 test images, drawn 6x
    assert len(pictures) == 4
    # the captions are what the model finds on the test images of its dataset (as provenance names it)
    shown = load_detection("shapes-det")
    results = model(shown.pipeline.denormalize(shown.x_test[:4]), conf=0.25)
    captions = re.findall(r'<figcaption class="note">(.*?)</figcaption>', html)
    assert captions == [r.verbose().rstrip(", ") or "no boxes" for r in results]
    assert any(len(r) for r in results)
    # a final.json (as `nasforge search` writes) is preferred for the metrics
    final = {"trial": best.number, "final_metrics": {**model.metrics, "test_map": 0.123456}}
    RunDir(run).final.write_text(json.dumps(final))
    again = write_report(run, out_dir=out).read_text()
    assert "0.1235" in again and f"<td>{best.number}</td>" in again
    assert "accuracy" not in again.lower()
