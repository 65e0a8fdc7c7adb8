"""How well training-free scores rank trained detectors: ``mae_det``, ``synflow`` and size (issue 23).

``score``: samples ``--n`` distinct random architectures of the ``detector`` space (under
``--max-params``, seed ``--seed``) bound to ``--dataset`` (``mnist-det`` by default: 64x64
canvases of 1-4 MNIST digits, built from ``--data-dir``; ``shapes-det`` needs no files). For each
it computes the zero-cost scores the way a search's screen does (:class:`ZeroCostEstimator` on one
fixed batch of training canvases, the network built with the trial's seed): the closed-form,
data-free ``mae_det``, ``synflow``, ``params`` and ``flops``; then trains it with
:class:`DetectionTrainEstimator` (``--epochs`` x ``--steps`` mini-batches of 32, AdamW, one-cycle)
and records its validation COCO mAP@[.5:.95]. One JSON line per architecture is appended to
``--out``; a rerun skips those already there, ``--start`` / ``--step`` shard the work.

``report``: Spearman and Kendall of each score against the trained val mAP.

Usage (from the repository root):
    for k in 0 1; do python benchmarks/detect_proxies.py score --data-dir ../shared/datasets/mnist \\
        --start $k --step 2 --out bench-results/detect_proxies_$k.jsonl & done; wait
    python benchmarks/detect_proxies.py report --out bench-results/detect_proxies_[01].jsonl
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from _meta import run_meta
from scipy import stats

from nasforge.data import load_detection
from nasforge.estimate import DetectionTrainEstimator, TrialContext, ZeroCostEstimator
from nasforge.space import DetectorSpace

SCORES = ("mae_det", "synflow", "params", "flops")


def _task(args: argparse.Namespace) -> Any:
    if args.dataset == "shapes-det":
        return load_detection("shapes-det", seed=0)
    return load_detection(args.dataset, args.data_dir, n_train=args.n_train, n_val=1000, n_test=1000, seed=0)


def score(args: argparse.Namespace) -> None:
    task = _task(args)
    space = DetectorSpace(max_params=args.max_params).bind(task.input_shape, task.num_classes)
    rng = np.random.default_rng(args.seed)
    archs: list[Any] = []
    seen: set[str] = set()
    while len(archs) < args.n:
        arch = space.sample(rng)
        if space.describe(arch) not in seen:
            seen.add(space.describe(arch))
            archs.append(arch)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["index"] for line in args.out.read_text().splitlines() if line.strip()}
    zc = ZeroCostEstimator(task, proxies=list(SCORES), batch_size=32, data_seed=args.seed, threads=1)
    trainer = DetectionTrainEstimator(task, epochs=args.epochs, steps_per_epoch=args.steps, threads=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = run_meta()
    for i in range(args.start, args.n, args.step):
        if i in done:
            continue
        ctx_seed = args.seed * 10_000 + i
        proxies = zc.evaluate(archs[i], TrialContext(i, seed=ctx_seed))
        trained = trainer.evaluate(archs[i], TrialContext(i, seed=ctx_seed))
        row = {
            "index": i,
            "architecture": space.describe(archs[i]),
            "val_map": trained["val_map"],
            "val_map_50": trained["val_map_50"],
            "train_seconds": trained["train_seconds"],
            "proxies": {p: proxies[p] for p in SCORES},
            "settings": {k: str(v) for k, v in vars(args).items() if k != "part"},
            "meta": meta,
        }
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{i:3d} val mAP {row['val_map']:.4f} {row['architecture']}", flush=True)


def report(files: list[str]) -> None:
    rows = [
        json.loads(line)
        for pattern in files
        for path in sorted(glob.glob(pattern))
        for line in Path(path).read_text().splitlines()
        if line.strip()
    ]
    val = np.array([r["val_map"] for r in rows])
    print(
        f"{len(rows)} detectors; val mAP {val.min():.3f}-{val.max():.3f} (median {np.median(val):.3f}); "
        f"training seconds median {statistics.median(r['train_seconds'] for r in rows):.1f}"
    )
    print("| score | Spearman ρ | Kendall τ |")
    print("|---|---:|---:|")
    for name in SCORES:
        x = np.array([r["proxies"][name] for r in rows], dtype=float)
        x = np.where(np.isfinite(x), x, np.nanmin(x[np.isfinite(x)]) - 1)
        rho, tau = stats.spearmanr(x, val).statistic, stats.kendalltau(x, val).statistic
        print(f"| {name} | {rho:.3f} | {tau:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["score", "report"])
    parser.add_argument("--dataset", default="mnist-det", choices=["mnist-det", "fashion-det", "shapes-det"])
    parser.add_argument("--data-dir", type=Path, help="the IDX directory (mnist-det, fashion-det)")
    parser.add_argument("--n-train", type=int, default=3000, help="training canvases")
    parser.add_argument("--n", type=int, default=24, help="random detectors")
    parser.add_argument("--max-params", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=24, help="mini-batches of 32 per epoch")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-results/detect_proxies.jsonl"))
    args, extra = parser.parse_known_args()
    if args.part == "score":
        if args.dataset != "shapes-det" and args.data_dir is None:
            parser.error(f"{args.dataset} needs --data-dir (the IDX files)")
        score(args)
    else:
        report([str(args.out), *extra])


if __name__ == "__main__":
    main()
