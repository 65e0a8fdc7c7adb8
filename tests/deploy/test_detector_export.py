"""Detector export: fp32 ONNX parity on decoded boxes, INT8 with mAP, OnnxDetector, CLI, profile, latency."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.data import load_detection
from nasforge.deploy import (
    DetectionExportReport,
    ExportQualityWarning,
    OnnxDetector,
    detection_check_images,
    export,
    profile_model,
)
from nasforge.detect import Results
from nasforge.errors import CheckpointError, ConfigError
from nasforge.estimate import DetectionTrainEstimator, train_detector
from nasforge.hardware._export_det import match_boxes
from nasforge.nn import RepVGGBlock
from nasforge.space import DetectorSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task():
    return load_detection("shapes-det", n_train=128, n_val=32, n_test=24, seed=0)


@pytest.fixture(scope="module")
def space(task):
    # k1kx_rep blocks: RepVGG branches that the export folds
    return DetectorSpace(
        stem=[8],
        block={"depth": [1], "op": ["k1kx_rep"], "kernel": [5], "bottleneck": [0.5]},
        stages=[{"width": [16]}, {"width": [16]}, {"width": [16]}],
        neck_width=[16],
        head_width=[16],
        head_depth=[1],
        scales=[2],
    ).bind(task.input_shape, task.num_classes)


@pytest.fixture(scope="module")
def saved(task, space, tmp_path_factory):
    arch = space.sample(np.random.default_rng(0))
    model = train_detector(arch, task, epochs=6, batch_size=16, lr=5e-3, threads=1)
    return model.save(tmp_path_factory.mktemp("det") / "det.nasforge")


def _check(task):
    return task.pipeline.denormalize(task.x_test)


def test_fp32_onnx_gives_the_same_boxes_and_leaves_the_model_unfused(saved, task, tmp_path):
    model = nf.load(saved)
    report = export(model, tmp_path / "det.onnx", **detection_check_images(task, 64))
    assert isinstance(report, DetectionExportReport) and report.path == tmp_path / "det.onnx"
    assert report.max_abs_diff < 1e-4 and report.n_checked == len(task.x_test)
    assert report.n_boxes["pytorch"] > 0 and report.n_boxes["pytorch"] == report.n_boxes["exported"]
    assert report.box_match == 1.0 and report.box_max_diff < 1e-3
    assert report.map["pytorch"]["map"] > 0.05
    assert abs(report.map["pytorch"]["map"] - report.map["exported"]["map"]) < 1e-4
    assert "boxes matched 100.0%" in str(report) and "mAP" in str(report)
    assert all(b.fused is None for b in model.module.modules() if isinstance(b, RepVGGBlock))
    # the graph: raw pixels in, three maps out, fused (no RepVGG side branches), metadata to decode
    proto = onnx.load(str(report.path))
    assert [o.name for o in proto.graph.output] == ["heatmap", "size", "offset"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["nasforge.task"] == "detection" and meta["nasforge.stride"] == "4"
    assert json.loads(meta["nasforge.class_names"]) == list(task.class_names)
    n_conv = sum(n.op_type == "Conv" for n in proto.graph.node)
    n_torch = sum(isinstance(m, torch.nn.Conv2d) for m in model.module.modules())
    assert n_conv < n_torch  # branches folded: fewer convolutions than the training-time network


def test_onnx_detector_gives_the_same_results_as_pytorch(saved, task, tmp_path):
    model = nf.load(saved)
    path = export(model, tmp_path / "det.onnx").path
    runtime = OnnxDetector(path, threads=1)
    assert runtime.class_names == model.class_names and runtime.stride == model.stride
    pixels = (_check(task)[:4].permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
    files = []
    for i, a in enumerate(pixels):
        Image.fromarray(a).save(tmp_path / f"im{i}.png")
        files.append(tmp_path / f"im{i}.png")
    ours, theirs = model(files, conf=0.1), runtime(files, conf=0.1)
    assert sum(len(r) for r in ours) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert isinstance(b, Results) and b.path == a.path and b.names == a.names
        torch.testing.assert_close(b.boxes.data, a.boxes.data, atol=1e-3, rtol=1e-4)
    assert repr(runtime).endswith("3x64x64 -> 3 classes, stride 4)")
    with pytest.raises(CheckpointError, match="ONNX export"):
        nf.load(path)


def test_int8_reports_map_and_box_agreement(saved, task, tmp_path):
    model = nf.load(saved)
    options = detection_check_images(task, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExportQualityWarning)  # judged below, not by a warning
        report = export(model, tmp_path / "det.int8.onnx", format="int8", **options)
    assert report.format == "int8" and report.path.is_file()
    assert 0.0 < report.box_match <= 1.0 and report.n_boxes["exported"] > 0
    fp32, int8 = report.map["pytorch"]["map"], report.map["exported"]["map"]
    assert report.map_drop == pytest.approx(fp32 - int8)
    assert int8 > 0.5 * fp32  # a tiny shapes detector survives INT8 roughly
    assert report.path.stat().st_size < export(model, tmp_path / "fp.onnx").path.stat().st_size
    assert list(tmp_path.glob(".*")) == []  # no partial or intermediate files left
    # the gate: a larger drop than allowed is an error, and the file already there stays as it was
    before = report.path.read_bytes()
    assert report.map_drop is not None and report.map_drop > 0, report  # INT8 loses a little here
    with pytest.raises(ConfigError, match="max_map_drop"):
        export(model, report.path, format="int8", max_map_drop=report.map_drop / 2, **options)
    assert report.path.read_bytes() == before and list(tmp_path.glob(".*")) == []
    assert OnnxDetector(report.path)(_check(task)[:2], conf=0.1)[0].names == model.names


def test_box_matching():
    a = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "labels": torch.tensor([0, 1])}
    b = {"boxes": torch.tensor([[21.0, 20, 30, 30], [0, 0, 10, 11]]), "labels": torch.tensor([1, 0])}
    assert match_boxes(a, b) == (2, 1.0)
    b["labels"] = torch.tensor([0, 1])  # right boxes, wrong classes
    assert match_boxes(a, b)[0] == 0
    flat = {"boxes": torch.tensor([[5.0, 5, 5, 5]]), "labels": torch.tensor([0])}  # no area, no IoU
    assert match_boxes(flat, flat) == (1, 0.0)


def test_bad_requests_are_one_clear_error(saved, tmp_path):
    model = nf.load(saved)
    with pytest.raises(ConfigError, match="calibration"):
        export(model, tmp_path / "x.onnx", format="int8")
    with pytest.raises(ConfigError, match="eval_targets"):
        export(model, tmp_path / "x.onnx", eval_labels=[0])
    with pytest.raises(ConfigError, match="3 entries for 2 images"):
        export(model, tmp_path / "x.onnx", eval_images=torch.rand(2, 3, 64, 64), eval_targets=[{}] * 3)
    assert not (tmp_path / "x.onnx").exists()
    classifier = tmp_path / "clf.onnx"
    export(nf.load("digits-s"), classifier)
    with pytest.raises(CheckpointError, match="classifier export"):
        OnnxDetector(classifier)


def test_cli_export_and_profile_a_detector(saved, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.onnx"
    result = runner.invoke(app, ["export", str(saved), "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "boxes matched 100.0%" in result.output
    int8 = runner.invoke(
        app, ["export", str(saved), "-f", "int8", "--out", str(tmp_path / "q.onnx"), "--calibration", "32"]
    )
    assert int8.exit_code == 0, int8.output
    assert "(int8)" in int8.output and "mAP" in int8.output  # calibrated and checked on shapes-det
    bad = runner.invoke(app, ["export", str(saved), "--out", "/proc/nope/det.onnx"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and "--out" in bad.output
    torchscript = runner.invoke(
        app, ["export", str(saved), "-f", "torchscript", "--out", str(tmp_path / "d.pt")]
    )
    assert torchscript.exit_code == 2 and "onnx or int8" in torchscript.output
    profiled = runner.invoke(app, ["profile", str(saved), "--repeats", "2", "--warmup", "0", "--json"])
    assert profiled.exit_code == 0, profiled.output
    data = json.loads(profiled.output)
    assert data["params"] == nf.load(saved).metrics["params"] and data["flops"] > 0
    assert [r["runtime"] for r in data["latency"]] == ["torch_eager", "onnx_fp32"]


def test_profile_model_with_int8(saved):
    found = profile_model(saved, repeats=2, warmup=0, int8=True)
    assert [r["runtime"] for r in found.latency] == ["torch_eager", "onnx_fp32", "onnx_int8"]
    assert all(r["median_ms"] > 0 for r in found.latency) and found.peak_activation_bytes > 0


def test_latency_objective_and_constraint_in_a_detector_search(task, space):
    estimator = DetectionTrainEstimator(
        task, epochs=1, steps_per_epoch=2, batch_size=16, threads=1, hardware={"repeats": 3, "warmup": 0}
    )
    exp = nf.Experiment("det-latency", space=space, objectives=["val_map", "-latency_ms"], seed=0)
    exp.run("random", estimator, n_trials=1)
    metrics = exp.trials[0].metrics
    assert metrics["latency_ms"] == metrics["latency_onnx_ms"] > 0 and "val_map" in metrics
    # a latency constraint is judged before training: an impossible one screens every proposal
    strict = nf.Experiment(
        "det-strict", space=space, objectives=["val_map"], constraints=["latency_ms <= 1e-6"]
    )
    strict.run("random", estimator, n_trials=1)
    assert strict.trials[0].status == "SCREENED" and "train_loss" not in strict.trials[0].metrics
