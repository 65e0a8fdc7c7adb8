"""Score every NAS-Bench-201 cell class with zero-cost proxies once, into a ProxyScorer cache file.

A benchmark of proxy-using strategies over 100+ seeds would otherwise rescore the same networks in
every run. This script scores the representative of each of the 6,466 key classes of the full
NB201 space (CIFAR-10 shape: 3x32x32 input, 10 classes, C=16, N=5) with
:class:`nasforge.estimate.ProxyScorer` and writes the JSON-lines cache that the strategies read
through their ``proxy_cache`` option. The values are exactly what a search computes on the fly
(same representative, weight seed and batch), so the cache only saves time. It also prints the
median seconds per network, the proxies' real cost.

Usage (from the repository root):
    python benchmarks/nb201_proxy_cache.py --out bench-results/nb201-proxies.jsonl --workers 2
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _keys(limit: int | None) -> list[str]:
    from nasforge.space import NB201Space

    space = NB201Space()
    seen: dict[str, str] = {}
    for ops in itertools.product(range(5), repeat=6):
        arch = space.from_ops(ops)
        seen.setdefault(arch.key, space.to_arch_str(space.representative(arch)))
    cells = sorted(seen.values())
    return cells[:limit] if limit else cells


def _work(args: tuple[list[str], list[str], str, int]) -> list[float]:
    cells, proxies, out, threads = args
    from nasforge.estimate import ProxyScorer
    from nasforge.space import NB201Space

    space = NB201Space().bind((3, 32, 32), 10)
    scorer = ProxyScorer(proxies, cache=out, threads=threads)
    seconds = []
    for i, cell in enumerate(cells):
        before = scorer.seconds
        scorer.scores([space.from_arch_str(cell)])
        seconds.append(scorer.seconds - before)
        if i % 500 == 0:
            print(f"{out}: {i}/{len(cells)}", file=sys.stderr, flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "nb201-proxies.jsonl")
    parser.add_argument("--proxies", default="synflow,flops,params")
    parser.add_argument("--workers", type=int, default=1, help="processes (one torch thread each)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N classes (smoke)")
    args = parser.parse_args(argv)
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    cells = _keys(args.limit)
    parts = [args.out.with_suffix(f".part{i}") for i in range(args.workers)]
    jobs = [(cells[i :: args.workers], proxies, str(part), 1) for i, part in enumerate(parts)]
    start = time.time()
    if args.workers == 1:
        results = [_work(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(_work, jobs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as f:
        for part in parts:
            if part.exists():
                f.write(part.read_text(encoding="utf-8"))
                part.unlink()
    seconds = [s for r in results for s in r if s > 0]
    print(
        f"{len(cells)} cells, proxies {proxies}: {len(seconds)} scored, median "
        f"{statistics.median(seconds) if seconds else 0:.3f} s per network (one thread), "
        f"{time.time() - start:.0f} s wall with {args.workers} workers -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
