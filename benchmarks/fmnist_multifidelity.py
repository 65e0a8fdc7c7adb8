"""Early stopping on real training: Hyperband / successive halving vs full-budget trials, equal wall clock.

For each seed and each strategy, one search of the chain-CNN space on Fashion-MNIST runs for the
same wall-clock budget (``--minutes``; trials start until it is spent), every trial training up to
``--epochs`` epochs on a fixed stratified 10% subset (1 torch thread). ``random`` trains every
trial fully; ``hyperband`` and ``successive_halving`` sample randomly too but stop unpromising
trials after 1 and 3 epochs (eta 3). The pick of each search (best validation accuracy among the
fully trained trials) is then trained from scratch with one final budget (``--final-epochs`` on the
same subset) and tested on the 10,000 test images; that test accuracy is what is compared.

``--max-mflops`` keeps only architectures with at most that many MFLOPs per image (counted on the
built network before any training), so that no single slow network can eat a search's budget.
``--resolution`` resizes the whole task (training, validation, final training and test images) to
that many pixels per side, which makes every trial cheaper so that a budget holds more brackets.
Searches of different strategies can run side by side in separate processes (one per core, e.g.
``--strategies random`` in one and ``--strategies hyperband`` in the other) so that both see the
same machine load.

Usage (from the repository root):
    python benchmarks/fmnist_multifidelity.py --data-dir ../shared/datasets/fashion-mnist \\
        --seeds 0 1 --minutes 10 --strategies random hyperband
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _meta import run_meta

import nasforge as nf
from nasforge.experiment import TrialState
from nasforge.hardware import count_flops


def make_space(max_params: int, max_mflops: float | None, shape: tuple[int, ...]) -> nf.spaces.ChainCNN:
    """The chain-CNN space (depth 2-5) under a parameter limit and, optionally, a FLOPs limit.

    The FLOPs of a candidate are counted on its built network (one image of ``shape``) before it
    is ever trained, so the search spends no time on networks too slow for the budget.
    """
    constraints: list[nf.space.Constraint] = []
    if max_mflops is not None:
        plain = nf.spaces.ChainCNN(depth=(2, 5))
        cache: dict[str, float] = {}

        def mflops(params: Any) -> float:
            arch = plain.make(params, check_constraints=False)
            if arch.key not in cache:
                net = arch.build(shape, 10)
                cache[arch.key] = count_flops(net, shape) / 1e6
            return cache[arch.key]

        constraints.append(
            nf.space.Predicate(lambda p: mflops(p) <= max_mflops, name=f"MFLOPs <= {max_mflops}")
        )
    return nf.spaces.ChainCNN(depth=(2, 5), max_params=max_params, constraints=constraints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="Fashion-MNIST IDX directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--strategies", nargs="+", default=["random", "hyperband"])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per search")
    parser.add_argument("--epochs", type=int, default=9, help="full training budget of a trial")
    parser.add_argument("--final-epochs", type=int, default=15)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--max-params", type=int, default=150_000)
    parser.add_argument(
        "--max-mflops",
        type=float,
        default=None,
        help="only architectures with at most this many MFLOPs per image (checked before training)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="resize every image (search, final training, test) to this many pixels per side",
    )
    parser.add_argument(
        "--hard-budget",
        action="store_true",
        help="stop the running trial at the deadline too (run(hard_timeout=True)): equal wall clock",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/fmnist_multifidelity.json"))
    args = parser.parse_args()

    task = nf.datasets.load("fashion-mnist", args.data_dir)
    if args.resolution is not None:
        task = task.with_resolution(args.resolution)
    subset = task.with_fraction(args.fraction, seed=0)
    rows = []
    for seed in args.seeds:
        for strategy in args.strategies:
            space = make_space(args.max_params, args.max_mflops, task.input_shape)
            est = nf.TrainEstimator(subset, epochs=args.epochs, batch_size=128, lr=0.005, threads=1)
            exp = nf.Experiment(f"{strategy}-{seed}", space=space, seed=seed)
            start = time.perf_counter()
            exp.run(strategy, est, timeout=args.minutes * 60, hard_timeout=args.hard_budget)
            search_s = time.perf_counter() - start
            states = [t.state for t in exp.trials]
            best = exp.best()
            row = {
                "seed": seed,
                "strategy": strategy,
                "search_seconds": round(search_s, 1),
                "trials": len(states),
                "complete": states.count(TrialState.COMPLETE),
                "pruned": states.count(TrialState.PRUNED),
                "failed": states.count(TrialState.FAIL),
                "epochs_trained": sum(int(t.metrics.get("epochs", 0)) for t in exp.trials),
            }
            if best is not None:
                final = best.train(
                    subset, epochs=args.final_epochs, batch_size=128, lr=0.005, seed=seed, threads=1
                )
                row.update(
                    pick=space.describe(best.architecture),
                    pick_params=best.metrics.get("params"),
                    pick_mflops=round(best.metrics.get("flops", 0) / 1e6, 3),
                    pick_val_accuracy=best.metrics.get("val_accuracy"),
                    final_test_accuracy=final.metrics["test_accuracy"],
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
            _write(args.out, rows)  # after every search, so a stopped benchmark keeps what it measured

    print("\n| seed | strategy | trials (complete / stopped) | epochs trained | pick val acc | test acc |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['strategy']} | {r['trials']} ({r['complete']} / {r['pruned']}) | "
            f"{r['epochs_trained']} | {r.get('pick_val_accuracy', float('nan')):.4f} | "
            f"{r.get('final_test_accuracy', float('nan')):.4f} |"
        )
    _write(args.out, rows)
    print(f"wrote {args.out}")


def _write(out: Path, rows: list[dict[str, Any]]) -> None:
    meta = run_meta()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
