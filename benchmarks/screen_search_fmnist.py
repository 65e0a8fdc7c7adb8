"""A search with a training-free screen vs the same search without it, at equal wall clock (issue 24).

Both arms are ``nasforge search`` on Fashion-MNIST with the default search space, estimator and
final training (the large-data budget: trials train 4 epochs on 10% of the training images, the
pick 8 epochs on all of them) and the same ``--time`` budget, which covers the search, the
screen and the final training. They differ only in the strategy:

- ``plain``: the default strategy, regularised evolution (population 10, tournament 3);
- ``screen``: ``zc_warm_start`` around that same evolution: ``--candidates`` random architectures
  scored by ``--proxies`` on a batch of the user's training images, the ``--warm`` best trained
  first, then evolution continues from what they scored.

For each seed the two arms run at the same time, one per core (``taskset``; the core of each arm
alternates with the seed), so both see the same machine. Outcome per run: the final model's test
accuracy (``final.json``), with the trials run and the best trial's validation accuracy.
Results go to ``--out`` (JSON, rewritten after every seed, so a stopped run keeps its seeds;
``--resume`` skips the seeds already there).

Usage (from the repository root, the machine otherwise idle):
    python benchmarks/screen_search_fmnist.py run --data-dir ../shared/datasets/fashion-mnist \\
        --time 6m --seeds 0 1 2 3 4 --proxies meco
    python benchmarks/screen_search_fmnist.py report
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

ARMS = ("plain", "screen")


def _config(arm: str, args: argparse.Namespace) -> str:
    evolution = "{population: 10, tournament: 3}"
    if arm == "plain":
        return "data: {name: fashion-mnist}\nstrategy: {name: evolution, population: 10, tournament: 3}\n"
    return (
        "data: {name: fashion-mnist}\n"
        "strategy:\n"
        "  name: zc_warm_start\n"
        "  inner: evolution\n"
        f"  inner_options: {evolution}\n"
        f"  proxies: [{', '.join(args.proxies)}]\n"
        f"  n_candidates: {args.candidates}\n"
        f"  n_warm: {args.warm}\n"
    )


def _outcome(run_dir: Path, seconds: float) -> dict[str, Any]:
    final = json.loads((run_dir / "final.json").read_text())
    with (run_dir / "leaderboard.csv").open() as f:
        states = [row["state"] for row in csv.DictReader(f)]
    return {
        "test_accuracy": final["final_metrics"]["test_accuracy"],
        "val_accuracy": final["final_metrics"]["val_accuracy"],
        "best_trial_val_accuracy": final["search_metrics"]["val_accuracy"],
        "best_trial": final["trial"],
        "params": final["final_metrics"]["params"],
        "architecture": final["architecture"],
        "trials": states.count("COMPLETE"),
        "wall_seconds": round(seconds, 1),
        "time_budget": final.get("time_budget"),
    }


def run(args: argparse.Namespace) -> None:
    work = args.out.with_suffix("")
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"meta": run_meta(), "settings": {k: str(v) for k, v in vars(args).items()}}
    if args.resume and args.out.exists():
        results["seeds"] = json.loads(args.out.read_text()).get("seeds", {})
    results.setdefault("seeds", {})
    env = {**os.environ, "NASFORGE_DATA_DIR": str(args.data_dir.resolve()), "COLUMNS": "120"}
    for seed in args.seeds:
        if str(seed) in results["seeds"]:
            continue
        procs = {}
        for k, arm in enumerate(ARMS):
            config = work / f"{arm}.yaml"
            config.write_text(_config(arm, args))
            run_dir = work / f"{arm}_s{seed}"
            core = (k + seed) % 2
            cmd = ["taskset", "-c", str(core), sys.executable, "-m", "nasforge", "search", str(config),
                   "--time", args.time, "--seed", str(seed), "--run-dir", str(run_dir)]  # fmt: skip
            log = (work / f"{arm}_s{seed}.log").open("w")
            procs[arm] = (
                subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
                run_dir,
                time.time(),
            )
        row = {}
        for arm, (proc, run_dir, started) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"{arm} seed {seed} failed: see {work / f'{arm}_s{seed}.log'}")
            row[arm] = _outcome(run_dir, time.time() - started)
        results["seeds"][str(seed)] = row
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        print(seed, {a: (r["test_accuracy"], r["trials"]) for a, r in row.items()}, flush=True)


def report(args: argparse.Namespace) -> None:
    data = json.loads(args.out.read_text())
    seeds = data["seeds"]
    print("| seed | plain: test acc (trials) | screen: test acc (trials) | difference |")
    print("|---:|---:|---:|---:|")
    diffs = []
    for seed, row in seeds.items():
        p, s = row["plain"], row["screen"]
        diffs.append(s["test_accuracy"] - p["test_accuracy"])
        print(
            f"| {seed} | {p['test_accuracy']:.4f} ({p['trials']}) | {s['test_accuracy']:.4f} ({s['trials']}) "
            f"| {diffs[-1]:+.4f} |"
        )
    for arm in ARMS:
        acc = [row[arm]["test_accuracy"] for row in seeds.values()]
        if len(acc) < 2:
            print(f"{arm}: {acc[0]:.4f} (one seed)")
            continue
        print(
            f"{arm}: mean {statistics.mean(acc):.4f} ± {statistics.stdev(acc) / len(acc) ** 0.5:.4f} (s.e.)"
        )
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    print(
        f"screen - plain: mean {statistics.mean(diffs):+.4f}; "
        f"screen better on {wins}, worse on {losses} of {len(diffs)}"
    )
    verdict = (
        "helps" if wins >= 4 and statistics.mean(diffs) > 0
        else "hurts" if losses >= 4 and statistics.mean(diffs) < 0
        else "no difference shown"
    )  # fmt: skip
    print(f"pre-declared criterion (better on >= 4 of 5 seeds and higher mean): screening {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["run", "report"])
    parser.add_argument("--data-dir", type=Path, help="Fashion-MNIST IDX directory (run)")
    parser.add_argument("--time", default="6m", help="each search's --time budget")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--proxies", nargs="+", default=["meco"], help="the screen's proxies or ensemble")
    parser.add_argument("--candidates", type=int, default=300, help="architectures the screen scores")
    parser.add_argument("--warm", type=int, default=10, help="the screen's best, trained first")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/screen_search_fmnist.json"))
    args = parser.parse_args()
    if args.part == "run":
        if args.data_dir is None:
            parser.error("run needs --data-dir (the Fashion-MNIST IDX files)")
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
