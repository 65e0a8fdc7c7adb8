"""Accuracy vs measured INT8 latency on Fashion-MNIST: NSGA-II's Pareto front against random search.

The MBConv space (``nasforge.space.MBConvSpace``), each trial trained ``--epochs`` on a stratified
``--fraction`` of the training images (one torch thread) and then exported to a static INT8 ONNX
model, whose median latency (batch 1, one thread, 20 timed calls) is measured on this machine.
Objectives: validation accuracy (max) and INT8 latency (min). Each strategy gets ``--trials``
trials per seed; the hypervolume of every run's front is computed against one reference point
shared by all runs (accuracy 0, the largest latency any run measured), so the figures compare.
Writes JSON (after every run), and a plot of every front (``--plot``).

Usage (from the repository root; one strategy per core):
    taskset -c 0 python benchmarks/fmnist_mbconv_pareto.py --data-dir ../shared/datasets/fashion-mnist \\
        --strategies random --out bench-results/mbconv_pareto_random.json
    taskset -c 1 python benchmarks/fmnist_mbconv_pareto.py --data-dir ../shared/datasets/fashion-mnist \\
        --strategies nsga2 --out bench-results/mbconv_pareto_nsga2.json
    python benchmarks/fmnist_mbconv_pareto.py --summarize bench-results/mbconv_pareto_*.json \\
        --plot docs/img/mbconv_pareto.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

import nasforge as nf
from nasforge.experiment import Experiment, TrialState, hypervolume

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "nsga2": ("optuna", {"sampler": "nsga2", "population_size": 8}),
}


def run(args: argparse.Namespace) -> None:
    task = nf.datasets.load("fashion-mnist", args.data_dir)
    hardware = {"runtimes": ["int8"], "threads": 1, "repeats": 20, "warmup": 5}
    rows = []
    for seed in args.seeds:
        for label in args.strategies:
            name, options = STRATEGIES[label]
            est = nf.TrainEstimator(
                task, epochs=args.epochs, fraction=args.fraction, val_fraction=args.val_fraction,
                batch_size=128, lr=0.005, threads=1, resolution=args.resolution,
                hardware=hardware,
            )  # fmt: skip
            exp = Experiment(
                f"{label}-{seed}",
                space=nf.spaces.MBConvSpace(max_params=args.max_params),
                objectives=["val_accuracy", "-latency_ms"],
                seed=seed,
            )
            start = time.perf_counter()
            exp.run(name, est, n_trials=args.trials, strategy_options=options)
            done = [t for t in exp.trials if t.state is TrialState.COMPLETE]
            front = exp.pareto_front()
            rows.append(
                {
                    "strategy": label,
                    "seed": seed,
                    "seconds": round(time.perf_counter() - start, 1),
                    "points": [[t.metrics["val_accuracy"], t.metrics["latency_ms"]] for t in done],
                    "front": [[t.metrics["val_accuracy"], t.metrics["latency_ms"]] for t in front],
                    "int8_drop": [t.metrics.get("int8_accuracy_drop") for t in done],
                    "failed": sum(t.state is TrialState.FAIL for t in exp.trials),
                }
            )
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "points"}), flush=True)
            meta = run_meta()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


def summarize(paths: list[Path], plot: Path | None) -> None:
    rows = [r for p in paths for r in json.loads(p.read_text())["rows"]]
    worst = max(lat for r in rows for _, lat in r["points"])
    ref = [0.0, -worst]
    print(f"reference point: accuracy 0, latency {worst:.4f} ms\n")
    print("| strategy | seed | trials | front size | hypervolume | best accuracy | fastest |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["seed"], r["strategy"])):
        hv = hypervolume([[a, -lat] for a, lat in r["front"]], ref)
        best = max(a for a, _ in r["points"])
        fastest = min(lat for _, lat in r["points"])
        print(
            f"| {r['strategy']} | {r['seed']} | {len(r['points'])} | {len(r['front'])} | {hv:.4f} | "
            f"{best:.4f} | {fastest:.3f} ms |"
        )
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        colors = {"random": "#64748b", "nsga2": "#c2410c"}
        for r in rows:
            pts = sorted(r["front"], key=lambda p: p[1])
            label = f"{r['strategy']} seed {r['seed']}"
            color = colors.get(r["strategy"], "k")
            xs, ys = [p[1] for p in pts], [p[0] for p in pts]
            ax.plot(xs, ys, "-o", ms=4, drawstyle="steps-post", color=color, alpha=0.8, label=label)
        ax.set_xlabel("INT8 ONNX Runtime latency, ms (batch 1, 1 thread; lower is better)")
        ax.set_ylabel("validation accuracy")
        ax.legend(fontsize=7)
        ax.set_title("Fashion-MNIST, MBConv space: Pareto fronts")
        fig.tight_layout()
        plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot)
        print(f"\nwrote {plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--strategies", nargs="+", default=["random", "nsga2"], choices=sorted(STRATEGIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of the validation split scored"
    )
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument(
        "--resolution", type=int, default=None,
        help="train, validate and time the networks on images resized to this many pixels per side",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-results/mbconv_pareto.json"))
    parser.add_argument("--summarize", type=Path, nargs="+", default=None, help="JSON files of earlier runs")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.plot)
        return
    if args.data_dir is None:
        parser.error("--data-dir is required to run")
    run(args)


if __name__ == "__main__":
    main()
