"""INT8 vs fp32 ONNX Runtime latency: the zoo models, and which architectures INT8 speeds up.

Part 1: each shipped zoo model exported to ONNX fp32 and to INT8 (nasforge's export: static QDQ,
uint8 activations, int8 per-channel weights, calibrated on 256 training images); test accuracy of
both (MNIST / Fashion-MNIST read from ``--data-dir``; digits needs nothing) and median latency at
batch 1 and 64 (one thread).

Part 2: ``--n`` random untrained architectures of the chain-CNN and MBConv spaces at 28x28,
exported the same way (calibrated on random pixels: only their speed is measured); the INT8
speed-up (fp32 / INT8 median latency) at batch 1 and 64.

Run it on an otherwise idle core, e.g. ``taskset -c 1``.

Usage (from the repository root):
    taskset -c 1 python benchmarks/int8_speedup.py --data-dir ../shared/datasets --n 8
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _meta import run_meta

import nasforge as nf
from nasforge.deploy._export import _quantize, check_images
from nasforge.hardware import measure_latency

ZOO_DATA = {
    "digits-s": ("digits", None),
    "mnist-s": ("mnist", "mnist"),
    "fashion-mnist-s": ("fashion-mnist", "fashion-mnist"),
}


def latency(path: Path, shape: tuple[int, ...], batch: int, repeats: int) -> float:
    return float(measure_latency(str(path), shape, batch_size=batch, threads=1, repeats=repeats).median_ms)


def zoo_part(data_dir: Path | None, repeats: int, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (dataset, sub) in ZOO_DATA.items():
        if sub is not None and data_dir is None:
            print(f"skipping {name}: no --data-dir", flush=True)
            continue
        model = nf.load(name)
        task = nf.datasets.load(dataset, None if sub is None else data_dir / sub)
        images = check_images(task, calibration=256)
        shape = tuple(model.input_shape)
        row: dict[str, Any] = {"model": name}
        for fmt in ("onnx", "int8"):
            path = tmp / f"{name}.{fmt}.onnx"
            report = model.export(path, format=fmt, **images)
            row[f"{fmt}_test_accuracy"] = report.accuracy["exported"]
            for b in (1, 64):
                row[f"{fmt}_b{b}_ms"] = latency(path, shape, b, repeats)
        for b in (1, 64):
            row[f"speedup_b{b}"] = row[f"onnx_b{b}_ms"] / row[f"int8_b{b}_ms"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def space_part(n: int, repeats: int, seed: int, tmp: Path) -> list[dict[str, Any]]:
    shape = (1, 28, 28)
    spaces = {
        "chain_cnn": nf.spaces.ChainCNN(depth=(2, 6), max_params=300_000).bind(shape, 10),
        "mbconv": nf.spaces.MBConvSpace().bind(shape, 10),
    }
    rng = np.random.default_rng(seed)
    rows = []
    for name, space in spaces.items():
        for i in range(n):
            arch = space.sample(rng)
            net = arch.build().eval()
            fp32, int8 = tmp / f"{name}{i}.onnx", tmp / f"{name}{i}.int8.onnx"
            x = torch.rand(64, *shape, generator=torch.Generator().manual_seed(i))
            torch.onnx.export(
                net,
                (x[:1],),
                str(fp32),
                input_names=["pixels"],
                output_names=["logits"],
                dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
            _quantize(fp32, int8, x)
            row: dict[str, Any] = {"space": name, "arch": space.describe(arch)}
            for b in (1, 64):
                row[f"fp32_b{b}_ms"] = latency(fp32, shape, b, repeats)
                row[f"int8_b{b}_ms"] = latency(int8, shape, b, repeats)
                row[f"speedup_b{b}"] = row[f"fp32_b{b}_ms"] / row[f"int8_b{b}_ms"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding mnist/ and fashion-mnist/"
    )
    parser.add_argument("--n", type=int, default=8, help="random architectures per space")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-results/int8_speedup.json"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        zoo = zoo_part(args.data_dir, args.repeats, Path(tmp))
        archs = space_part(args.n, args.repeats, args.seed, Path(tmp))
    meta = run_meta()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "zoo": zoo, "architectures": archs}, indent=1) + "\n")
    print(
        "\n| model | fp32 acc | INT8 acc | b1 fp32 / INT8 ms | speed-up b1 "
        "| b64 fp32 / INT8 ms | speed-up b64 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in zoo:
        print(
            f"| {r['model']} | {r['onnx_test_accuracy']:.4f} | {r['int8_test_accuracy']:.4f} | "
            f"{r['onnx_b1_ms']:.3f} / {r['int8_b1_ms']:.3f} | {r['speedup_b1']:.2f}x | "
            f"{r['onnx_b64_ms']:.2f} / {r['int8_b64_ms']:.2f} | {r['speedup_b64']:.2f}x |"
        )
    print("\n| space | architecture | speed-up b1 | speed-up b64 |")
    print("|---|---|---:|---:|")
    for r in archs:
        print(f"| {r['space']} | `{r['arch']}` | {r['speedup_b1']:.2f}x | {r['speedup_b64']:.2f}x |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
