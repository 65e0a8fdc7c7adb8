"""Does a zero-cost warm start help on NAS-Bench-201? Strategies with and without proxies, same seeds.

Runs each variant below with :func:`nasforge.bench.run_benchmark` on the NB201 CIFAR-10 table
(search signal: 12-epoch validation accuracy; reported: 200-epoch test accuracy of the incumbent)
and prints the mean +- standard deviation at 10, 25, 50 and 100 queries, plus each variant's
difference to the first one paired by seed (mean +- standard error). A query is one table lookup,
i.e. one trained network; the proxies' own cost is reported separately (median seconds per network
from ``benchmarks/nb201_proxy_cache.py``).

The proxy scores come from a cache made once with ``benchmarks/nb201_proxy_cache.py`` (the same
values a search computes on the fly, see :class:`nasforge.estimate.ProxyScorer`); without it every
run scores its ``n_candidates`` networks itself (~0.1-1 s each on one core).

Usage (from the repository root):
    python benchmarks/nb201_proxy_cache.py --out bench-results/nb201-proxies.jsonl --workers 2
    python benchmarks/nb201_warmstart.py --seeds 100 --first-seed 1000 --variants all   # tuning
    python benchmarks/nb201_warmstart.py --seeds 100 --variants gls,zc-gls               # report
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench import run_benchmark

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = (10, 25, 50, 100)


def variants(cache: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (registered strategy, options)."""

    def zc(inner: str, **kw: Any) -> tuple[str, dict[str, Any]]:
        return "zc_warm_start", {"inner": inner, "proxy_cache": cache, **kw}

    return {
        "gls": ("guided_local", {}),
        "ls": ("local", {}),
        "bananas": ("bananas", {}),
        "zc-gls": zc("guided_local"),
        "zc-ls": zc("local"),
        "zc-bananas": zc("bananas"),
        "zc-gls-w5": zc("guided_local", n_warm=5),
        "zc-gls-w20": zc("guided_local", n_warm=20),
        "zc-gls-c200": zc("guided_local", n_candidates=200),
        "zc-gls-c3000": zc("guided_local", n_candidates=3000),
        "zc-gls-synflow-flops": zc("guided_local", proxies=["synflow", "flops"]),
        "zc-gls-flops": zc("guided_local", proxies=["flops"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=REPO_ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "bench-results" / "nb201-proxies.jsonl")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first .. first + seeds - 1")
    parser.add_argument("--budget", default="100q")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", default="gls,zc-gls", help="comma-separated labels, or 'all'")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "nb201_warmstart.json")
    args = parser.parse_args(argv)
    table = variants(str(args.cache))
    labels = list(table) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in labels if v not in table]
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {', '.join(table)}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    curves: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for label in labels:
        name, options = table[label]
        start = time.time()
        result = run_benchmark(
            "nb201",
            [name],
            seeds=seeds,
            budget=args.budget,
            root=args.bench_dir,
            workers=args.workers,
            strategy_options={name: options},
            checkpoints=CHECKPOINTS,
        )
        seconds[label] = time.time() - start
        curves[label] = np.array([run.values_along(CHECKPOINTS) for run in result.runs])
        print(f"{label}: {seconds[label]:.0f} s", file=sys.stderr, flush=True)

    base = labels[0]
    lines = [
        f"seeds {seeds[0]}..{seeds[-1]}, budget {args.budget}; test accuracy (%) of the incumbent",
        "",
        "| variant | "
        + " | ".join(f"{q} q" for q in CHECKPOINTS)
        + f" | paired vs {base} at 25 / 50 / 100 q |",
        "|---|" + "---:|" * (len(CHECKPOINTS) + 1),
    ]
    for label in labels:
        c = curves[label]
        cells = [f"{c[:, i].mean():.2f} ± {c[:, i].std(ddof=1):.2f}" for i in range(len(CHECKPOINTS))]
        diffs = []
        for q in (25, 50, 100):
            d = c[:, CHECKPOINTS.index(q)] - curves[base][:, CHECKPOINTS.index(q)]
            diffs.append(f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " / ".join(diffs) + " |")
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python " + shlex.join(sys.argv),
                "machine": f"{platform.machine()}, {platform.python_version()}",
                "date": time.strftime("%Y-%m-%d"),
                "seeds": seeds,
                "checkpoints": CHECKPOINTS,
                "variants": {k: {"strategy": table[k][0], "options": table[k][1]} for k in labels},
                "curves": {k: v.tolist() for k, v in curves.items()},
                "seconds": seconds,
                "report": report,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
