"""A search for networks that INT8 really speeds up, then INT8 vs fp32 on the trained pick.

Fashion-MNIST, the chain-CNN space (depth 2-5, <= 150k parameters). Each trial is trained
``--epochs`` on a stratified ``--fraction`` of the training images (one torch thread) and scored
on a stratified 10% of the validation split; the objective is validation accuracy with the
constraint ``int8_speedup >= --min-speedup`` (fp32 / INT8 ONNX Runtime latency at ``--batch``,
one thread). The constraint is checked on the untrained network before training (speed does not
depend on the weights), so architectures INT8 does not accelerate cost a measurement, not a
training; the trained network is measured again and judged on that.

The best feasible trial is then trained on the full training split (``--final-epochs``) and
exported to ONNX fp32 and to INT8 (static QDQ, uint8 activations, calibrated on 256 training
images); both are tested on the 10,000 test images and timed ``--runs`` times (each run: 5
warm-up and ``--repeats`` timed calls, median) at batch 1 and at ``--batch``, which gives the
speed-up and its repeatability (coefficient of variation of the runs' medians).

Usage (from the repository root, on an otherwise idle core):
    taskset -c 1 python benchmarks/int8_search.py --data-dir ../shared/datasets/fashion-mnist \\
        --trials 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

import nasforge as nf
from nasforge.deploy import Model, check_images
from nasforge.experiment import Experiment, TrialState
from nasforge.hardware import measure_latency


def timings(path: Path, shape: tuple[int, ...], batch: int, runs: int, repeats: int) -> dict[str, Any]:
    medians = []
    for _ in range(runs):
        rep = measure_latency(str(path), shape, batch_size=batch, threads=1, warmup=5, repeats=repeats)
        medians.append(float(rep.median_ms))
    mean = statistics.mean(medians)
    return {
        "median_ms": round(statistics.median(medians), 5),
        "cv": round(statistics.stdev(medians) / mean, 4) if runs > 1 else None,
        "runs_ms": [round(m, 5) for m in medians],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the fashion-mnist folder")
    parser.add_argument("--trials", type=int, default=20, help="trained trials (screened ones do not count)")
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--min-speedup", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--final-epochs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench-results/int8_search.json"))
    args = parser.parse_args()

    task = nf.datasets.load("fashion-mnist", args.data_dir)
    hardware = {"runtimes": ["onnx", "int8"], "batch": args.batch, "threads": 1, "repeats": 10, "warmup": 3}
    est = nf.TrainEstimator(
        task, epochs=args.epochs, fraction=args.fraction, val_fraction=0.1,
        batch_size=128, lr=0.005, threads=1, hardware=hardware,
    )  # fmt: skip
    space = nf.spaces.ChainCNN(depth=(2, 5), max_params=150_000)
    exp = Experiment(
        f"int8-{args.seed}",
        space=space,
        objectives=["val_accuracy"],
        constraints=[f"int8_speedup >= {args.min_speedup}"],
        seed=args.seed,
    )
    start = time.perf_counter()
    exp.run(args.strategy, est, n_trials=args.trials)
    search_s = time.perf_counter() - start
    screened = [t for t in exp.trials if t.screened]
    trained = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    best = exp.best()
    print(
        f"search: {len(trained)} trained, {len(screened)} screened out, "
        f"{sum(t.feasible for t in trained)} feasible after training, {search_s:.0f} s",
        flush=True,
    )
    if best is None:
        raise SystemExit("no feasible trial: nothing to train")
    described = space.describe(best.architecture)
    print(f"pick: trial {best.number} {described} {dict(best.metrics)}", flush=True)

    start = time.perf_counter()
    final = best.train(task, epochs=args.final_epochs, threads=1, seed=args.seed)
    final_s = time.perf_counter() - start
    model = Model.from_trained(final)
    images = check_images(task, calibration=256)
    shape = tuple(model.input_shape)
    row: dict[str, Any] = {
        "architecture": described,
        "params": best.metrics.get("params"),
        "search_int8_speedup": best.metrics.get("int8_speedup"),
        "val_accuracy_search": best.metrics.get("val_accuracy"),
        "final_train_seconds": round(final_s, 1),
        "pytorch_test_accuracy": final.metrics["test_accuracy"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("onnx", "int8"):
            path = Path(tmp) / f"m.{fmt}.onnx"
            report = model.export(path, format=fmt, **images)
            row[f"{fmt}_test_accuracy"] = report.accuracy["exported"]
            for b in (1, args.batch):
                row[f"{fmt}_b{b}"] = timings(path, shape, b, args.runs, args.repeats)
    for b in (1, args.batch):
        row[f"speedup_b{b}"] = round(row[f"onnx_b{b}"]["median_ms"] / row[f"int8_b{b}"]["median_ms"], 3)
    change = row["int8_test_accuracy"] - row["onnx_test_accuracy"]
    row["int8_accuracy_change_points"] = round(100 * change, 2)
    print(json.dumps(row, indent=1), flush=True)

    meta = run_meta()
    search = {
        "seconds": round(search_s, 1),
        "trained": len(trained),
        "screened": len(screened),
        "feasible_after_training": sum(t.feasible for t in trained),
        "trials": [
            {
                "number": t.number,
                "state": t.state.value,
                "screened": t.screened,
                "architecture": space.describe(t.architecture),
                **{k: t.metrics.get(k) for k in ("val_accuracy", "int8_speedup", "params")},
            }
            for t in exp.trials
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "search": search, "pick": row}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
