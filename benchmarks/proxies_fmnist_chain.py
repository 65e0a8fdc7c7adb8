"""Training-free proxies on the user's kind of data: chain CNNs trained on Fashion-MNIST (issue 24).

Two parts:

``score``: samples ``--n`` distinct random architectures of the default search space (the chain
CNN, depth 2-5, <= 150k parameters, bound to Fashion-MNIST's 1x28x28 / 10 classes) with
``--seed``; for each, every registered zero-cost proxy is computed by
:class:`nasforge.estimate.ZeroCostEstimator` exactly as a search's screening would (one fixed
batch of ``--batch`` training images with their labels, the network built with the trial's seed),
then the architecture is trained by :class:`nasforge.estimate.TrainEstimator` the way a search
trial is trained, only longer (``--epochs`` on a stratified ``--fraction`` of the training
images, Adam, the validation split scored after every epoch). One JSON line per architecture is
appended to ``--out`` as soon as it is measured; a rerun skips the architectures already there,
so a stopped run resumes. ``--start`` / ``--step`` shard the architectures between processes
(one per core).

``report``: Kendall's tau and Spearman's rho of every proxy and of the named ensembles
(``zc_frontier``, ``az_nas``, ``zc_vote``) against the trained validation accuracy (the
selection metric), with each proxy's median cost per network.

Usage (from the repository root):
    for k in 0 1; do taskset -c $k python benchmarks/proxies_fmnist_chain.py score \\
        --data-dir ../shared/datasets/fashion-mnist --start $k --step 2 \\
        --out bench-results/proxies_fmnist_chain_$k.jsonl & done; wait
    python benchmarks/proxies_fmnist_chain.py report --out bench-results/proxies_fmnist_chain_[01].jsonl
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

import nasforge as nf
from nasforge.estimate import ENSEMBLES, PROXIES, TrainEstimator, TrialContext, ZeroCostEstimator
from nasforge.estimate._ensemble import aggregate


def _space(task: Any) -> Any:
    return nf.spaces.ChainCNN(depth=(2, 5), max_params=150_000).bind(task.input_shape, task.num_classes)


def _archs(space: Any, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    archs = []
    while len(archs) < n:
        arch = space.sample(rng)
        key = space.describe(arch)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
    return archs


def score(args: argparse.Namespace) -> None:
    task = nf.datasets.load("fashion-mnist", args.data_dir)
    space = _space(task)
    archs = _archs(space, args.n, args.seed)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["index"] for line in args.out.read_text().splitlines() if line.strip()}
    proxies = [p for p in PROXIES if p != "mae_det"] + ["mae_det"]
    zc = ZeroCostEstimator(task, proxies=proxies, batch_size=args.batch, data_seed=args.seed, threads=1)
    trainer = TrainEstimator(
        task, epochs=args.epochs, fraction=args.fraction, batch_size=128, lr=0.005, threads=1
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = run_meta()
    for i in range(args.start, args.n, args.step):
        if i in done:
            continue
        arch = archs[i]
        ctx_seed = args.seed * 10_000 + i
        proxy = zc.evaluate(arch, TrialContext(i, seed=ctx_seed))
        trained = trainer.evaluate(arch, TrialContext(i, seed=ctx_seed))
        row = {
            "index": i,
            "architecture": space.describe(arch),
            "params": trained.get("params"),
            "val_accuracy": trained["val_accuracy"],
            "train_seconds": trained.get("train_seconds"),
            "proxy_seconds": proxy["proxy_seconds"],
            "proxies": {p: proxy[p] for p in proxies},
            "settings": {k: str(v) for k, v in vars(args).items() if k not in ("part",)},
            "meta": meta,
        }
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{i:3d} val {row['val_accuracy']:.4f} {row['architecture']}", flush=True)


def _corr(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(x)  # a failed proxy value ranks last, as the ensembles rank it
    x = np.where(ok, x, np.min(x[ok]) - 1 if ok.any() else 0.0)
    return float(stats.spearmanr(x, y).statistic), float(stats.kendalltau(x, y).statistic)


def report(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    for pattern in args.out_files:
        for path in sorted(glob.glob(str(pattern))):
            rows += [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["index"])
    val = np.array([r["val_accuracy"] for r in rows])
    records = [r["proxies"] for r in rows]
    print(
        f"{len(rows)} architectures; val accuracy {val.min():.4f}-{val.max():.4f} "
        f"(median {np.median(val):.4f})"
    )
    print(
        f"training seconds per architecture, median {statistics.median(r['train_seconds'] for r in rows):.1f}"
    )
    print("| proxy | Spearman ρ | Kendall τ |")
    print("|---|---:|---:|")
    table: list[tuple[str, float, float]] = []
    for name in records[0]:
        x = np.array([rec[name] for rec in records], dtype=float)
        rho, tau = _corr(x, val)
        table.append((name, rho, tau))
    for name, (members, how) in ENSEMBLES.items():
        if all(m in records[0] for m in members):
            x = aggregate(records, members, how)
            rho, tau = _corr(x, val)
            table.append((f"{name} ({how}:{'+'.join(members)})", rho, tau))
    for name, rho, tau in sorted(table, key=lambda t: -t[2]):
        print(f"| {name} | {rho:.3f} | {tau:.3f} |")
    print(
        f"proxy seconds per network (all proxies together): median "
        f"{statistics.median(r['proxy_seconds'] for r in rows):.2f}, "
        f"max {max(r['proxy_seconds'] for r in rows):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["score", "report"])
    parser.add_argument("--data-dir", type=Path, help="Fashion-MNIST IDX directory (score)")
    parser.add_argument("--n", type=int, default=40, help="random architectures")
    parser.add_argument("--seed", type=int, default=0, help="architecture sample, batch and training seed")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the training images")
    parser.add_argument("--batch", type=int, default=64, help="images in the proxies' batch")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-results/proxies_fmnist_chain.jsonl"))
    args, extra = parser.parse_known_args()
    if args.part == "score":
        if args.data_dir is None:
            parser.error("score needs --data-dir (the Fashion-MNIST IDX files)")
        score(args)
    else:
        args.out_files = [args.out, *extra]
        report(args)


if __name__ == "__main__":
    main()
