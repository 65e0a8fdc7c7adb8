"""benchmarks/detect_compare.py: the hand-designed detector, the report's verdict, and one tiny real run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    if str(BENCH) not in sys.path:  # the script imports _meta and real_data_compare from there
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("detect_compare", BENCH / "detect_compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dc = _load()


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_hand_detector_is_the_stated_network_of_the_default_space() -> None:
    from nasforge.hardware import Profiler

    arch = dc.hand_architecture(SimpleNamespace(input_shape=(1, 64, 64), num_classes=10))  # mnist-det
    assert (
        arch.space.describe(arch) == "stem8 | conv3x16*1/2 > conv3x32*1/2 > conv3x48*1/2 | fpn16x1 | head16x1"
    )
    assert Profiler().count(arch, ("params",))["params"] == 31_030


def _row(arm: str, seed: int, mAP: float, int8_ms: float) -> dict[str, Any]:
    return {
        "arm": arm,
        "seed": seed,
        "dataset": "mnist-det",
        "time": "15m",
        "status": "ok",
        "test_map": mAP,
        "test_map_50": mAP + 0.2,
        "int8_map": mAP - 0.005,
        "params": 50_000 if arm == "search" else 31_030,
        "latency_ms": {"onnx_int8": int8_ms},
        "pick_trial": 3 if arm == "search" else None,
        "trials_completed": 20 if arm == "search" else None,
        "architecture": "a",
    }


@pytest.mark.parametrize(
    ("gains", "search_ms", "verdict"),
    [
        ([0.06, 0.07, 0.08, 0.06, 0.09], 0.4, "shown"),
        ([0.06, 0.07, 0.08, 0.06, 0.09], 0.6, "not shown"),  # slower in INT8 than the hand detector
        ([0.06, 0.07, 0.08, 0.06], 0.4, "not shown"),  # four seeds
        ([0.02, 0.03, 0.02, 0.03, 0.02], 0.4, "not shown"),  # below the 5-point margin
        ([0.2, 0.2, 0.2, -0.01, -0.01], 0.4, "not shown"),  # better on 3 seeds of 5
    ],
)
def test_the_report_pairs_seeds_and_applies_the_criterion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], gains: list[float], search_ms: float, verdict: str
) -> None:
    out = tmp_path / "det.jsonl"
    rows = []
    for seed, gain in enumerate(gains):
        rows += [_row("hand", seed, 0.40, 0.5), _row("search", seed, 0.40 + gain, search_ms)]
    rows.append({**_row("search", 9, 0.9, 0.1), "status": "failed"})  # failed rows are left out
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dc.main(["report", "--in", str(out)])
    shown = capsys.readouterr().out
    assert shown.startswith("Pre-declared criterion") and "### mnist-det, 15m per run" in shown
    assert f"| search | {len(gains)} | " in shown and "| hand | " in shown
    assert shown.rstrip().endswith(f"Verdict: {verdict}."), shown


def test_a_tiny_hand_run_writes_a_row_with_int8_map_and_latency_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "det.jsonl"
    args = [
        "run",
        "--dataset",
        "shapes-det",
        "--time",
        "12s",
        "--arms",
        "hand",
        "--seeds",
        "0",
        "--repeats",
        "3",
    ]
    dc.main([*args, "--out", str(out)])
    said = capsys.readouterr().out
    [row] = _rows(out)
    assert row["status"] == "ok", (row, said)
    assert 0 <= row["test_map"] <= row["test_map_50"] <= 1 and row["int8_map"] is not None
    assert row["params"] > 0 and row["pick_trial"] is None and row["final_epochs"] >= 1
    assert {"torch_eager", "onnx_fp32", "onnx_int8"} <= set(row["latency_ms"])
    assert (tmp_path / "det" / "shapes-det_12s_hand_s0" / "model.int8.onnx").exists()
    dc.main([*args, "--out", str(out)])
    assert "hand seed 0: in" in capsys.readouterr().out and len(_rows(out)) == 1


def test_the_criterion_is_printed_as_declared(capsys: pytest.CaptureFixture[str]) -> None:
    dc.main(["criterion"])
    text = capsys.readouterr().out
    assert "at least 0.05" in text and "at least 4 of 5 seeds" in text and "INT8 ONNX latency" in text
