"""Executors on this machine: wall-clock speed-up of concurrent trials, and the driver's memory.

Part 1 (speed): the same random search (same seed, ``--trials`` trials, real training on the
embedded digits for ``--epochs`` epochs) run with each executor; wall clock, speed-up over the
in-process run (which trains each trial with every core), and whether the same architectures were
evaluated.

Part 2 (memory): ``--memory-trials`` short trials in-process and with one process per trial; the
driver's peak resident memory (ru_maxrss) after trial 1, 10, 25 and the last.

Every configuration runs in a fresh Python process, so peak memory and imports do not carry over.

Usage (from the repository root, on an otherwise idle machine):
    python benchmarks/executors.py --trials 16 --epochs 5 --memory-trials 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

SPEED = {
    "inprocess": {"executor": "inprocess", "options": {}},
    "process-2": {"executor": "process", "options": {"concurrency": 2}},
    "process-4": {"executor": "process", "options": {"concurrency": 4}},
    "ray-2": {"executor": "ray", "options": {"concurrency": 2, "cpus_per_trial": 1}},
    "ray-4": {"executor": "ray", "options": {"concurrency": 4, "cpus_per_trial": 0.5}},
}


def one(kind: str, name: str, trials: int, epochs: int, seed: int) -> dict[str, Any]:
    """Run one configuration in this process and return its measurements."""
    import nasforge as nf

    task = nf.datasets.load("digits")
    space = nf.spaces.ChainCNN(depth=(2, 5), max_params=150_000)
    est = nf.TrainEstimator(task, epochs=epochs)
    exp = nf.Experiment(name, space=space, seed=seed)
    rss: dict[int, float] = {}

    def record(e: Any, t: Any) -> None:
        n = e.finished_count()
        if n in (1, 10, 25, trials):
            rss[n] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    spec = SPEED[name] if kind == "speed" else {"executor": name, "options": {}}
    start = time.perf_counter()
    exp.run(
        "random",
        est,
        n_trials=trials,
        executor=spec["executor"],
        executor_options=spec["options"],
        callbacks=[record],
    )
    wall = time.perf_counter() - start
    states = [t.state.value for t in exp.trials]
    return {
        "config": name,
        "wall_seconds": round(wall, 1),
        "complete": states.count("COMPLETE"),
        "failed": states.count("FAIL"),
        "keys": sorted(t.architecture.key for t in exp.trials),
        "driver_peak_rss_mb": {str(k): round(v, 1) for k, v in sorted(rss.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--memory-trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", nargs="+", default=list(SPEED))
    parser.add_argument("--out", type=Path, default=Path("bench-results/executors.json"))
    parser.add_argument("--one", nargs=2, metavar=("KIND", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, name = args.one
        trials = args.trials if kind == "speed" else args.memory_trials
        epochs = args.epochs if kind == "speed" else 1
        print(json.dumps(one(kind, name, trials, epochs, args.seed)))
        return

    def child(kind: str, name: str) -> dict[str, Any]:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            kind,
            name,
            "--trials",
            str(args.trials),
            "--epochs",
            str(args.epochs),
            "--memory-trials",
            str(args.memory_trials),
            "--seed",
            str(args.seed),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps({k: v for k, v in result.items() if k != "keys"}), flush=True)
        return result

    speed = [child("speed", name) for name in args.configs]
    base = speed[0]
    for r in speed:
        r["speedup"] = round(base["wall_seconds"] / r["wall_seconds"], 2)
        r["same_architectures"] = r["keys"] == base["keys"]
    memory = [child("memory", name) for name in ("inprocess", "process")]
    for r in speed + memory:
        r.pop("keys")
    meta = {
        **run_meta(),
        "cores": str(len(os.sched_getaffinity(0))),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "speed": speed, "memory": memory}, indent=1) + "\n")
    print("\n| executor | wall clock (s) | speed-up | same architectures | complete |")
    print("|---|---:|---:|---|---:|")
    for r in speed:
        print(
            f"| {r['config']} | {r['wall_seconds']} | {r['speedup']}x | "
            f"{r['same_architectures']} | {r['complete']} |"
        )
    print("\n| executor | driver peak RSS (MB) after trial 1 / 10 / 25 / last |")
    print("|---|---|")
    for r in memory:
        print(f"| {r['config']} | {' / '.join(str(v) for v in r['driver_peak_rss_mb'].values())} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
