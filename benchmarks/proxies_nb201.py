"""How well do zero-cost proxies rank NAS-Bench-201 networks? Spearman rho against CIFAR-10 accuracy.

Samples ``--n`` distinct cells uniformly from the NB201 space (seeded), builds each CIFAR-10-shaped
network (3x32x32 input, 10 classes, C=16, N=5, the benchmark's own network) with weights drawn
from a per-network seed, scores it with every proxy of :func:`nasforge.estimate.compute_proxies`
and looks up its 200-epoch CIFAR-10 ``test_acc`` in the NB201 table. It prints Spearman's rho of
each proxy and of two ensembles with the test accuracy, and the median seconds per network, and
writes everything (per-network scores included) as JSON.

Inputs (one fixed batch of ``--batch-size`` shared by all networks, as in the reference protocol):

- synflow: data-free (an all-ones input), params: no input, flops: the input shape only;
- the data-dependent proxies (naswot, jacob_cov, snip, grad_norm, fisher, grasp): by default
  standard-normal inputs with uniform random labels (no CIFAR images are available here); with
  ``--data-dir DIR`` holding Fashion-MNIST IDX files, real training images (28x28 grey, scaled to
  [0, 1], normalised with the dataset's mean 0.2860 / std 0.3530, resized bilinearly to 32x32 and
  repeated over 3 channels) with their real labels (10 classes, like CIFAR-10). Neither is
  CIFAR-10, so the data-dependent correlations are a lower bound of what CIFAR batches would give.

Ensembles: ``vote_all`` (mean rank over every proxy), ``vote_paper`` (synflow, jacob_cov, snip:
the vote of Abdelfattah et al. 2021), and ``ridge_cv`` (:class:`nasforge.estimate.ProxyEnsemble`
on every proxy, evaluated by k-fold cross-validation: each network is predicted by a model that
never saw it; rho is over the pooled out-of-fold predictions, and the mean over folds is given
too).

Usage (from the repository root; keep N small on a shared machine, the full run is N >= 1000):
    python benchmarks/proxies_nb201.py --n 60 --bench-dir ../shared/benchmarks
    python benchmarks/proxies_nb201.py --n 60 --data-dir ../shared/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data import read_idx
from nasforge.estimate import DEFAULT_PROXIES, NB201Table, ProxyEnsemble, compute_proxies, rank_vote, ranks
from nasforge.space import NB201Space

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = REPO_ROOT.parent / "shared" / "benchmarks"
PAPER_VOTE = ("synflow", "jacob_cov", "snip")
FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


def spearman(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    """Spearman's rho (Pearson on mean ranks; nan and -inf scores rank lowest)."""
    ra, rb = ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def make_batch(batch_size: int, data_dir: Path | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    generator = torch.Generator().manual_seed(seed)
    if data_dir is None:
        x = torch.randn((batch_size, 3, 32, 32), generator=generator)
        y = torch.randint(0, 10, (batch_size,), generator=generator)
        return x, y, f"standard-normal inputs, uniform random labels (seed {seed})"
    images = read_idx(data_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(data_dir / "train-labels-idx1-ubyte.gz")
    idx = torch.randperm(len(images), generator=generator)[:batch_size].numpy()
    grey = (torch.from_numpy(images[idx].astype(np.float32)) / 255.0 - FMNIST_MEAN) / FMNIST_STD
    x = F.interpolate(grey[:, None], size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    y = torch.from_numpy(labels[idx].astype(np.int64))
    return x, y, f"Fashion-MNIST train images from {data_dir}, resized to 32x32, 3 channels (seed {seed})"


def sample_cells(n: int, seed: int) -> list[Any]:
    space = NB201Space().bind((3, 32, 32), 10)
    rng = np.random.default_rng(seed)
    seen: dict[str, Any] = {}
    while len(seen) < n:  # distinct cell strings, uniform over the 15,625 cells
        arch = space.sample(rng)
        seen.setdefault(space.to_arch_str(arch), arch)
    return list(seen.values())


def cross_validated(records: list[dict[str, float]], y: np.ndarray, folds: int, seed: int) -> dict[str, Any]:
    order = np.random.default_rng(seed).permutation(len(records))
    oof = np.empty(len(records))
    per_fold = []
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        model = ProxyEnsemble(proxies=list(DEFAULT_PROXIES)).fit([records[i] for i in train], y[train])
        oof[test] = model.predict([records[i] for i in test])
        per_fold.append(spearman(oof[test], y[test]))
    full = ProxyEnsemble(proxies=list(DEFAULT_PROXIES)).fit(records, y)  # for the coefficients only
    return {
        "rho": spearman(oof, y),
        "rho_fold_mean": float(np.nanmean(per_fold)),
        "folds": folds,
        "coef_all_rows": dict(zip(full.proxies_, np.round(full.coef_, 4).tolist(), strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="networks to sample (full run: >= 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sample, the batch and the weights")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None, help="Fashion-MNIST IDX directory (optional)")
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds of the ridge ensemble")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "proxies_nb201.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    table = NB201Table(args.bench_dir)
    archs = sample_cells(args.n, args.seed)
    x, y, data_desc = make_batch(args.batch_size, args.data_dir, args.seed)
    records: list[dict[str, float]] = []
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    for i, arch in enumerate(archs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed * 1_000_003 + i)
            net = arch.build()
        start = time.perf_counter()
        scores = compute_proxies(net, x, y, seed=args.seed)
        seconds.append(time.perf_counter() - start)
        info = table.evaluate(arch)
        records.append(scores)
        rows.append(
            {
                "arch_str": arch.space.to_arch_str(arch),
                "index": info["index"],
                "test_acc": info["test_acc"],
                "seconds": round(seconds[-1], 3),
                "scores": scores,
            }
        )
        print(f"[{i + 1}/{len(archs)}] {seconds[-1]:.2f}s test_acc={info['test_acc']:.2f}", file=sys.stderr)

    acc = np.array([r["test_acc"] for r in rows])
    rho = {name: spearman([r[name] for r in records], acc) for name in DEFAULT_PROXIES}
    rho["vote_all"] = spearman(rank_vote(records, DEFAULT_PROXIES), acc)
    rho["vote_paper"] = spearman(rank_vote(records, PAPER_VOTE), acc)
    ridge = cross_validated(records, acc, args.folds, args.seed)
    rho["ridge_cv"] = ridge["rho"]

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"# Zero-cost proxies on NAS-Bench-201 (CIFAR-10 test_acc), N={args.n}\n")
    print(f"command: `{command}`  ")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s)  "
    )
    print(f"data-dependent inputs: {data_desc}, batch {args.batch_size}\n")
    print("| proxy | Spearman rho |\n|---|---|")
    for name, value in rho.items():
        print(f"| {name} | {value:+.3f} |")
    print(
        f"\nridge_cv: pooled out-of-fold rho {ridge['rho']:+.3f}, "
        f"mean over {args.folds} folds {ridge['rho_fold_mean']:+.3f}"
    )
    print(
        f"seconds per network (all proxies): median {statistics.median(seconds):.2f}, max {max(seconds):.2f}"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "command": command,
        "n": args.n,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "inputs": data_desc,
        "spearman": rho,
        "ridge_cv": ridge,
        "seconds_median": statistics.median(seconds),
        "seconds_max": max(seconds),
        "networks": rows,
    }
    args.out.write_text(json.dumps(result, indent=1, default=float, allow_nan=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
