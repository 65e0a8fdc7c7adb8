"""AZ-NAS, MeCo, ZiCo and SWAP on NAS-Bench-201: score cells, then rank-correlate and pick an ensemble.

Two steps, so that a long scoring run can be split over processes and resumed:

``score``: scores cells ``--start`` to ``--stop`` (every ``--step``-th) of
``benchmarks/proxies_nb201.py``'s seeded sample (``sample_cells(N, seed)``: its first 1,000
cells are the ones of the zero-cost table in docs/benchmarks.md) with the same protocol: the
CIFAR-10-shaped network (C=16, N=5) built with the weight seed ``seed * 1_000_003 + i``, one fixed
batch of 64 (``--data-dir``: Fashion-MNIST training images resized to 32x32 on 3 channels, with
their labels), proxy seed ``seed``. Every proxy family is timed separately. One JSON line per cell
is appended to ``--out``; cells already there are skipped.

``report``: reads the lines, prints Spearman and Kendall tau of every proxy and of candidate
ensembles against the 200-epoch CIFAR-10 test accuracy, on the report cells (``--report``
range, default 0-999) and on the tuning cells (``--tune`` range, default 1000-1499), and the
ensemble chosen on the tuning cells (best Spearman), evaluated once on the report cells.

Usage (from the repository root, one torch thread, low priority):
    nice -n 10 python benchmarks/proxies_frontier_nb201.py score --n 1500 --start 0 --stop 1500 \
        --data-dir ../shared/datasets/fashion-mnist --bench-dir ../shared/benchmarks
    python benchmarks/proxies_frontier_nb201.py report --bench-dir ../shared/benchmarks
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxies_nb201 import make_batch, sample_cells

from nasforge.bench import rank_correlations
from nasforge.estimate import NB201Table, compute_proxies, log_rank_vote, rank_vote, ranks
from nasforge.estimate._proxies_frontier import swap_size_factor

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "bench-results" / "proxies_frontier_nb201.jsonl"
#: proxy families, each timed as one call (AZ-NAS's three scores share one pass)
FAMILIES: dict[str, tuple[str, ...]] = {
    # the classic proxies other than synflow are left out for time (the machine is shared): their
    # values on the first 1,000 cells are in proxies_nb201.py's run (same cells, weights and
    # batch); params and flops come from the table, whose NB201 formulas are exact
    "synflow": ("synflow",),
    "az_nas": ("az_expressivity", "az_progressivity", "az_trainability"),
    "meco": ("meco", "meco_opt"),
    "zico": ("zico",),
    "swap": ("swap",),
}
#: scored only on request (--families vote): the classic vote's other two proxies
EXTRA_FAMILIES: dict[str, tuple[str, ...]] = {"vote": ("jacob_cov", "snip")}
AZ_NAS = ("az_expressivity", "az_progressivity", "az_trainability", "flops")


def _done(out: Path) -> set[int]:
    """Cells already scored in ``out`` or in its siblings ``<stem>_*.jsonl`` (other processes)."""
    done: set[int] = set()
    stem = out.stem.rsplit("_", 1)[0] if out.stem[-1].isdigit() else out.stem
    for path in {out, *out.parent.glob(f"{stem}_*.jsonl")}:
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    done.add(json.loads(line)["i"])
                except (ValueError, KeyError):
                    continue  # a line being written by another process
    return done


def _append(out: Path, row: dict[str, Any]) -> None:
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"[{row['i']}] {sum(row['seconds'].values()):.2f}s", file=sys.stderr, flush=True)


def score(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    table = NB201Table(args.bench_dir)
    archs = sample_cells(args.n, args.seed)
    x, y, desc = make_batch(64, args.data_dir, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for i in range(args.start, min(args.stop, len(archs)), args.step):
        if i in _done(args.out):
            continue
        arch = archs[i]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed * 1_000_003 + i)
            net = arch.build()
        scores: dict[str, float] = {}
        seconds: dict[str, float] = {}
        families = (
            {f: {**FAMILIES, **EXTRA_FAMILIES}[f] for f in args.families} if args.families else FAMILIES
        )
        for family, names in families.items():
            start = time.perf_counter()
            scores.update(compute_proxies(net, x, y, names=list(names), seed=args.seed))
            seconds[family] = round(time.perf_counter() - start, 4)
        info = table.evaluate(arch)
        if args.families:  # a supplement to another run's lines: only what was asked
            _append(
                args.out,
                {"i": i, "arch_str": arch.space.to_arch_str(arch), "scores": scores, "seconds": seconds},
            )
            continue
        scores["params"] = info["params_M"] * 1e6
        scores["flops"] = info["flops_M"] * 1e6
        row = {
            "i": i,
            "arch_str": arch.space.to_arch_str(arch),
            "test_acc": info["test_acc"],
            "scores": scores,
            "seconds": seconds,
            "inputs": desc,
        }
        _append(args.out, row)
    return 0


def _records(rows: list[dict[str, Any]], mu: float, sigma: float) -> list[dict[str, float]]:
    out = []
    for r in rows:
        s = dict(r["scores"])
        s["swap_reg"] = s["swap"] * swap_size_factor(s["params"], mu, sigma)
        s["flops_nasforge"] = r["flops_nasforge"]
        out.append(s)
    return out


def _nasforge_flops(rows: list[dict[str, Any]]) -> None:
    """The library's ``flops`` proxy, counted on the meta device (no computation): it skips the
    edges that cannot reach a cell's output, which the table's FLOPs count."""
    from nasforge.hardware import count_flops
    from nasforge.space import NB201Space

    space = NB201Space().bind((3, 32, 32), 10)
    for r in rows:
        net = space.from_arch_str(r["arch_str"]).build(device="meta")
        r["flops_nasforge"] = float(count_flops(net, (3, 32, 32)))


def _corr(values: Any, truth: np.ndarray) -> tuple[float, float]:
    return rank_correlations(list(np.asarray(values, dtype=float)), list(truth))


AZ_NAS_LIB = ("az_expressivity", "az_progressivity", "az_trainability", "flops_nasforge")
POOL = ("az_expressivity", "az_progressivity", "az_trainability", "flops", "meco", "meco_opt", "zico")
POOL += ("swap_reg", "synflow")


def _ensembles(records: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Candidate ensembles: AZ-NAS's, then every 2-5 subset of :data:`POOL`, both aggregations.

    The same values as :func:`rank_vote` / :func:`log_rank_vote` on each subset (checked below
    for the first), computed from each proxy's ranks once.
    """
    out = {
        "az_nas, complexity = the table's FLOPs (as the authors)": log_rank_vote(records, AZ_NAS),
        "az_nas, complexity = nasforge's flops proxy": log_rank_vote(records, AZ_NAS_LIB),
    }
    n = len(records)
    rank_of = {p: ranks([r[p] for r in records]) for p in POOL}
    for k in (2, 3, 4, 5):
        for combo in itertools.combinations(POOL, k):
            out[f"log_rank:{'+'.join(combo)}"] = np.sum([np.log(rank_of[p] / n) for p in combo], axis=0)
            out[f"vote:{'+'.join(combo)}"] = np.mean([rank_of[p] for p in combo], axis=0)
    first = POOL[:2]
    assert np.allclose(out[f"log_rank:{'+'.join(first)}"], log_rank_vote(records, first))
    assert np.allclose(out[f"vote:{'+'.join(first)}"], rank_vote(records, first))
    return out


def report(args: argparse.Namespace) -> int:
    rows = [json.loads(line) for out in args.out for line in out.read_text().splitlines() if line.strip()]
    common = set.intersection(*(set(r["scores"]) for r in rows))
    for r in rows:  # lines written before a family was dropped carry extra scores
        r["scores"] = {k: v for k, v in r["scores"].items() if k in common}
    by_i = {r["i"]: r for r in rows}
    for path in args.extra or []:  # supplements (--families vote): their scores join the cells'
        for line in path.read_text().splitlines():
            extra = json.loads(line)
            if extra["i"] in by_i:
                by_i[extra["i"]].setdefault("extra", {}).update(extra["scores"])
    every = [by_i[i] for i in range(*args.cells) if i in by_i]
    tune = [by_i[i] for i in range(*args.tune) if i in by_i]
    held = [by_i[i] for i in range(*args.held_out) if i in by_i]
    _nasforge_flops(list({id(r): r for r in every + tune + held}.values()))
    print(f"cells {len(every)} of {args.cells}; tuning {len(tune)} of {args.tune}; ", end="")
    print(f"held-out {len(held)} of {args.held_out}")
    print(f"inputs: {rows[0]['inputs']}; swap_reg mu={args.mu}, sigma={args.sigma}")
    rec = _records(every, args.mu, args.sigma)
    acc = np.array([r["test_acc"] for r in every])
    print("\n| proxy | Spearman | Kendall |\n|---|---:|---:|")
    for name in rec[0]:
        rho, tau = _corr([r[name] for r in rec], acc)
        print(f"| {name} | {rho:.3f} | {tau:.3f} |")
    for label, names in (("az_nas (table FLOPs)", AZ_NAS), ("az_nas (nasforge flops)", AZ_NAS_LIB)):
        rho, tau = _corr(log_rank_vote(rec, names), acc)
        print(f"| {label} | {rho:.3f} | {tau:.3f} |")
    rec_tune = _records(tune, args.mu, args.sigma)
    acc_tune = np.array([r["test_acc"] for r in tune])
    if args.sweep_swap and tune:
        print("\nswap_reg on the tuning cells, mu x sigma (thousands of parameters):")
        for mu in (800.0, 1000.0, 1200.0, 1500.0, 2000.0):
            for sigma in (1e5, 3e5, 1e6, 3e6):
                v = [r["scores"]["swap"] * swap_size_factor(r["scores"]["params"], mu, sigma) for r in tune]
                print(f"  mu={mu:.0f} sigma={sigma:.0e}: {_corr(v, acc_tune)[0]:.3f}")
    print("\n| seconds per network (median / max) | " + " | ".join(FAMILIES) + " |")
    print("|---|" + "---:|" * len(FAMILIES))
    cells = [r["seconds"] for r in every if set(FAMILIES) <= set(r["seconds"])]
    print(
        f"| {len(cells)} cells | "
        + " | ".join(
            f"{statistics.median(c[f] for c in cells):.2f} / {max(c[f] for c in cells):.2f}" for f in FAMILIES
        )
        + " |"
    )
    if tune:
        ens_tune = _ensembles(rec_tune)
        ranked = sorted(ens_tune, key=lambda k: -_corr(ens_tune[k], acc_tune)[0])
        print(f"\n{len(ens_tune)} candidate ensembles; the best on the tuning cells (Spearman):")
        for k in ranked[:15]:
            print(f"  {_corr(ens_tune[k], acc_tune)[0]:.3f}  {k}")
    if tune and held:
        rec_held = _records(held, args.mu, args.sigma)
        acc_held = np.array([r["test_acc"] for r in held])
        ens_held = _ensembles(rec_held)
        print("\n| ensemble | Spearman (tuning) | Spearman (held-out) | Kendall (held-out) |")
        print("|---|---:|---:|---:|")
        for k in [*list(ens_tune)[:2], ranked[0]]:
            rho, tau = _corr(ens_held[k], acc_held)
            print(f"| {k} | {_corr(ens_tune[k], acc_tune)[0]:.3f} | {rho:.3f} | {tau:.3f} |")
        if all({"jacob_cov", "snip"} <= set(r.get("extra", {})) for r in held):
            votes = [{**s, **r["extra"]} for s, r in zip(rec_held, held, strict=True)]
            rho, tau = _corr(rank_vote(votes, ("synflow", "jacob_cov", "snip")), acc_held)
            print(f"| vote:synflow+jacob_cov+snip (not tuned) | - | {rho:.3f} | {tau:.3f} |")
            print(f"(jacob_cov + snip seconds per network, median: {_median_extra(args.extra):.2f})")
    return 0


def _median_extra(paths: list[Path]) -> float:
    return statistics.median(
        sum(json.loads(line)["seconds"].values()) for p in paths for line in p.read_text().splitlines()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--n", type=int, default=1500, help="size of the seeded sample")
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--stop", type=int, default=1500)
    s.add_argument("--step", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data-dir", type=Path, default=None)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--families", nargs="+", default=None, help=f"only these: {[*FAMILIES, *EXTRA_FAMILIES]}")
    r = sub.add_parser("report")
    r.add_argument("--cells", type=int, nargs=2, default=(0, 1000), help="cells of the proxy table")
    r.add_argument("--tune", type=int, nargs=2, default=(0, 300), help="cells the ensemble is chosen on")
    r.add_argument("--held-out", type=int, nargs=2, default=(300, 1000), help="cells it is reported on")
    r.add_argument("--mu", type=float, default=None, help="swap_reg centre (default: the library's)")
    r.add_argument("--sigma", type=float, default=None)
    r.add_argument("--sweep-swap", action="store_true")
    r.add_argument("--extra", type=Path, nargs="+", default=None, help="supplement lines (--families vote)")
    for p in (s, r):
        p.add_argument("--bench-dir", type=Path, default=REPO_ROOT.parent / "shared" / "benchmarks")
    s.add_argument("--out", type=Path, default=OUT, help="JSON-lines file to append to")
    r.add_argument("--out", type=Path, nargs="+", default=[OUT], help="JSON-lines files to read")
    args = parser.parse_args(argv)
    if args.command == "score":
        return score(args)
    from nasforge.estimate._proxies_frontier import SWAP_MU, SWAP_SIGMA

    args.mu = SWAP_MU if args.mu is None else args.mu
    args.sigma = SWAP_SIGMA if args.sigma is None else args.sigma
    return report(args)


if __name__ == "__main__":
    raise SystemExit(main())
