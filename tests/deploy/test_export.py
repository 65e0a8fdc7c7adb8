"""Export to ONNX, INT8 ONNX and TorchScript, checked against PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.errors import ConfigError


@pytest.fixture(scope="module")
def task():
    return nf.datasets.load("digits")


@pytest.fixture(scope="module")
def model(task, tmp_path_factory):
    space = nf.spaces.ChainCNN(depth=2, layer={"op": ["conv"], "filters": [16], "kernel": [3], "stride": [1]})
    arch = space.sample(np.random.default_rng(0))
    trained = nf.train_final(arch, task, epochs=10, lr=0.01, threads=1, seed=0)
    return nf.load(trained.save(tmp_path_factory.mktemp("m") / "digits.nasforge"))


def _pixels(task, x):
    return (x * task.std[0] + task.mean[0]).clamp(0, 1)


def test_onnx_matches_pytorch_takes_any_batch_and_describes_itself(model, task, tmp_path):
    report = model.export(tmp_path / "m.onnx", format="onnx", eval_images=_pixels(task, task.x_test))
    assert report.max_abs_diff < 1e-4 and report.top1_agreement == 1.0 and report.n_checked == 360
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    pixels = _pixels(task, task.x_test[:7])
    logits = session.run(None, {"pixels": pixels.numpy()})[0]
    with torch.no_grad():
        expected = model.module(task.x_test[:7]).numpy()  # the graph normalises raw pixels itself
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert session.run(None, {"pixels": pixels[:1].numpy()})[0].shape == (1, 10)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["nasforge.class_names"]) == list(model.class_names)
    assert json.loads(meta["nasforge.input_shape"]) == [1, 8, 8]


def test_torchscript_matches_pytorch(model, tmp_path):
    report = model.export(tmp_path / "m.pt", format="torchscript")
    assert report.max_abs_diff < 1e-5 and report.n_checked == 64


def test_int8_runs_and_stays_within_a_point_on_digits(model, task, tmp_path):
    report = model.export(
        tmp_path / "m.int8.onnx",
        format="int8",
        calibration=_pixels(task, task.x_train[:300]),
        eval_images=_pixels(task, task.x_test),
        eval_labels=task.y_test.numpy(),
    )
    assert report.accuracy["pytorch"] == pytest.approx(model.metrics["test_accuracy"], abs=1e-9)
    assert report.accuracy["exported"] >= report.accuracy["pytorch"] - 0.01, str(report)
    assert report.top1_agreement >= 0.95
    names = {n.op_type for n in onnx.load(str(tmp_path / "m.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= names
    assert not (tmp_path / "m.int8.fp32.onnx").exists()  # intermediate files are cleaned up


def test_bad_requests_are_clear_errors(model, tmp_path):
    with pytest.raises(ConfigError, match="calibration images"):
        model.export(tmp_path / "x.onnx", format="int8")
    with pytest.raises(ConfigError, match="valid formats: onnx, int8, torchscript"):
        model.export(tmp_path / "x.tflite", format="tflite")
    with pytest.raises(ConfigError, match="eval_labels has 3"):
        model.export(tmp_path / "x.onnx", eval_images=np.zeros((5, 8, 8), np.uint8), eval_labels=[1, 2, 3])


def test_cli_export(model, tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["export", str(model.path), "--format", "int8", "--calibration", "200"])
    assert done.exit_code == 0, done.output
    assert "accuracy" in done.output and "int8" in done.output
    assert model.path.with_name("digits.int8.onnx").is_file()
    bad = runner.invoke(app, ["export", str(model.path), "--format", "tflite"])
    assert bad.exit_code == 2 and "valid formats" in bad.output


def test_cli_export_refuses_an_unwritable_out_before_exporting(model, tmp_path):
    runner = CliRunner()
    (tmp_path / "notes.txt").write_text("x")
    for out, why in (
        (tmp_path / "notes.txt" / "m.onnx", "notes.txt is a file, not a directory"),
        (tmp_path, "it is a directory"),
        ("/proc/m.onnx", "/proc does not accept new files"),  # refused even for root
    ):
        # int8 on mnist without its files: the data would be another error, so the check comes first
        args = [
            "export",
            str(model.path),
            "--format",
            "int8",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path),
        ]
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert text.startswith("error: cannot write the export file") and why in text, text
        assert "give another --out" in text and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(ConfigError, match="cannot write the export file"):
        model.export(tmp_path / "notes.txt" / "m.onnx")
