"""Measured latency (PyTorch eager, ONNX Runtime) and the peak activation estimate."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import ConfigError
from nasforge.hardware import measure_latency, peak_activation_bytes
from nasforge.nn._layers import Residual


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


def test_torch_latency_is_measured_with_fixed_threads_and_restores_the_mode():
    net = _net().train()
    before = torch.get_num_threads()
    rep = measure_latency(net, (1, 8, 8), batch_size=2, threads=1, warmup=2, repeats=7)
    assert rep.backend == "torch" and rep.batch_size == 2 and rep.threads == 1
    assert len(rep.samples_ms) == 7 and all(s > 0 for s in rep.samples_ms)
    assert rep.p10_ms <= rep.median_ms <= rep.p90_ms
    assert rep.cv == pytest.approx(rep.std_ms / rep.mean_ms)
    assert net.training and torch.get_num_threads() == before
    assert "median" in str(rep) and "samples_ms" not in rep.to_dict()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy (TorchScript) ONNX exporter
def test_onnx_latency(tmp_path):
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        _net(),
        torch.zeros(1, 1, 8, 8),
        str(path),
        dynamo=False,
        dynamic_axes={"input": {0: "n"}},
        input_names=["input"],
    )
    rep = measure_latency(path, (1, 8, 8), batch_size=3, repeats=5, warmup=1)
    assert rep.backend == "onnxruntime" and len(rep.samples_ms) == 5 and rep.median_ms > 0


def test_bad_latency_calls_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no ONNX file"):
        measure_latency(tmp_path / "missing.onnx", (1, 8, 8))
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ConfigError, match=r"ONNX Runtime can load"):
        measure_latency(tmp_path / "bad.onnx", (1, 8, 8))
    with pytest.raises(ConfigError, match="repeats"):
        measure_latency(_net(), (1, 8, 8), repeats=1)


def test_peak_activation_is_the_largest_layer_input_plus_output():
    # conv: 1x8x8 in (256 B) + 4x8x8 out (1024 B); ReLU: 1024 B in + 1024 B out, the largest pair
    assert peak_activation_bytes(_net(), (1, 8, 8)) == 2048
    assert peak_activation_bytes(_net(), (1, 8, 8), batch_size=3) == 3 * 2048
    # a residual block keeps its input alive while its body runs
    block = nn.Sequential(Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())))
    assert peak_activation_bytes(block, (4, 8, 8)) == 3 * 1024


def test_profile_command_reports_every_runtime():
    args = [
        "profile",
        "digits-s",
        "--int8",
        "--batch",
        "1",
        "--batch",
        "4",
        "--repeats",
        "3",
        "--warmup",
        "0",
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["params"] > 0 and report["flops"] > 0 and report["peak_activation_bytes"] > 0
    runs = {(r["runtime"], r["batch_size"]) for r in report["latency"]}
    assert runs == {(rt, b) for rt in ("torch_eager", "onnx_fp32", "onnx_int8") for b in (1, 4)}
