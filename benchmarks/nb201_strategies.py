"""Search strategies on NAS-Bench-201 (CIFAR-10): the NB201 paper protocol, anytime results, speed.

Three parts, all through :func:`nasforge.bench.run_benchmark` (the public Experiment API, one
independent in-memory experiment per strategy and seed):

(a) the NAS-Bench-201 paper protocol: 12,000 simulated seconds per run (the sum of the 12-epoch
    training times of the queried cells), the search sees the 12-epoch validation accuracy, and the
    report is the 200-epoch test accuracy of the cell with the best validation accuracy; mean ± std
    over the seeds, next to the published CIFAR-10 numbers (Dong & Yang, ICLR 2020: RS 93.70 ± 0.36,
    REA 93.92 ± 0.30);
(b) the same report after 50 / 100 / 150 queries for every registered strategy (Optuna TPE
    included when registered, through the same harness);
(c) speed: queries per second of each strategy through the API, a bare Python loop of table
    lookups, and the wall time of 100 seeds x 300 queries of REA (1 and 2 worker processes).

It prints markdown (machine, date, command, tables) and writes ``report.md`` plus, per part, the
harness's ``bench.json`` and ``bench.png`` to ``--out``.

Usage (from the repository root):
    python benchmarks/nb201_strategies.py --bench-dir ../shared/benchmarks
    python benchmarks/nb201_strategies.py --parts c --seeds 20        # quick speed check
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from nasforge.bench import BenchResult, run_benchmark
from nasforge.bench._result import format_mean_std, machine_info
from nasforge.estimate import TrialContext
from nasforge.registry import STRATEGIES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = REPO_ROOT.parent / "shared" / "benchmarks"
# Dong & Yang, NAS-Bench-201 (ICLR 2020), CIFAR-10 test accuracy (%), 12,000 s budget
PUBLISHED = {"random": (93.70, 0.36), "evolution": (93.92, 0.30)}
# grid walks the space in a fixed order: not a strategy to compare over seeds
NOT_COMPARED = ("grid",)


def _strategies(requested: str | None) -> list[str]:
    if requested:
        return [s.strip() for s in requested.split(",") if s.strip()]
    names = [n for n in STRATEGIES.names() if n not in NOT_COMPARED]
    first = [n for n in ("random", "evolution") if n in names]
    return first + [n for n in names if n not in first]


def _save(result: BenchResult, out: Path, name: str, lines: list[str]) -> None:
    folder = out / name
    result.to_json(folder / "bench.json")
    try:
        result.plot(folder / "bench.png", regret=True)
    except ImportError as exc:
        lines.append(f"(no plot: {exc})")
    lines.append(f"Curves: `{folder / 'bench.json'}`, plot: `{folder / 'bench.png'}`.")


def part_a(args: argparse.Namespace, strategies: list[str], lines: list[str]) -> BenchResult:
    result = run_benchmark(
        "nb201", strategies, seeds=args.seeds, budget="12000s", root=args.bench_dir, workers=args.workers
    )
    lines += [
        "## (a) NB201 paper protocol: 12,000 simulated seconds",
        "",
        f"{args.seeds} seeds per strategy; search signal `valid_acc_12ep`, report `test_acc` (200 epochs) "
        "of the incumbent; mean ± std (population std) over seeds. Published: NAS-Bench-201 paper, "
        "CIFAR-10 test. Wall time of this part: "
        f"{result.meta['wall_seconds']:.1f} s with {args.workers} worker(s).",
        "",
        "| strategy | test_acc @ 12,000 s | published | queries per run (mean) | q/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result.summary([12000.0]):
        cell = row["checkpoints"][0]
        name = result.meta["strategy_names"][row["strategy"]]
        pub = PUBLISHED.get(name)
        lines.append(
            f"| {row['strategy']} | {format_mean_std(cell['mean'], cell['std'])} | "
            f"{format_mean_std(*pub) if pub else '-'} | {row['queries_mean']:.1f} | "
            f"{row['queries_per_second']:,.0f} |"
        )
    lines += ["", "Anytime (simulated seconds):", "", result.table(), ""]
    _save(result, args.out, "a_12000s", lines)
    lines.append("")
    return result


def part_b(args: argparse.Namespace, strategies: list[str], lines: list[str]) -> BenchResult:
    result = run_benchmark(
        "nb201",
        strategies,
        seeds=args.seeds,
        budget="150q",
        root=args.bench_dir,
        workers=args.workers,
        checkpoints=[50, 100, 150],
    )
    missing = [n for n in ("tpe", "optuna") if n not in STRATEGIES]
    lines += [
        "## (b) test_acc of the incumbent after 50 / 100 / 150 queries",
        "",
        f"{args.seeds} seeds per strategy, same harness for every strategy"
        + (f" (not registered at run time: {', '.join(missing)})" if missing else "")
        + f". Wall time: {result.meta['wall_seconds']:.1f} s with {args.workers} worker(s).",
        "",
        result.table(),
        "",
    ]
    _save(result, args.out, "b_150q", lines)
    lines.append("")
    return result


def _bare_loop(bench_dir: Path, n: int) -> tuple[float, float]:
    """Queries/s of ``NB201Table.evaluate`` in a plain loop, and of the vectorised lookup."""
    from nasforge.registry import ESTIMATORS, SPACES

    space = SPACES.create("nb201")
    table = ESTIMATORS.create("nb201", root=bench_dir)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(n)]
    ctx = TrialContext(0, 0)
    table.evaluate(archs[0], ctx)  # load the table outside the timing
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for arch in archs:
            table.evaluate(arch, ctx)
        best = max(best, n / (time.perf_counter() - start))
    ops = rng.integers(0, 5, size=(n, 6))
    start = time.perf_counter()
    table.lookup(ops)
    vectorised = n / (time.perf_counter() - start)
    return best, vectorised


def part_c(args: argparse.Namespace, strategies: list[str], lines: list[str]) -> None:
    seeds = min(args.seeds, 20)
    # one process, so the rate is not shared with a second worker on a busy machine
    speed = run_benchmark("nb201", strategies, seeds=seeds, budget="150q", root=args.bench_dir, workers=1)
    lines += [
        "## (c) speed",
        "",
        f"Queries per second through the API (Experiment ask → strategy → table → tell; {seeds} seeds x "
        "150 queries per strategy in one process; table loading excluded):",
        "",
        "| strategy | q/s |",
        "|---|---:|",
    ]
    for row in speed.summary():
        lines.append(f"| {row['strategy']} | {row['queries_per_second']:,.0f} |")
    loop, vectorised = _bare_loop(args.bench_dir, 20_000)
    lines += [
        f"| bare Python loop of `NB201Table.evaluate` (no Experiment, no strategy) | {loop:,.0f} |",
        f"| vectorised `NB201Table.lookup` (20,000 cells at once) | {vectorised:,.0f} |",
        "",
        "Wall time of 100 seeds × 300 queries of REA (`run_benchmark('nb201', ['re'], seeds=100, "
        "budget='300q', workers=W)`, measured around the call: process start-up and table loading "
        "included; target < 20 s, aim < 2 s):",
        "",
        "| workers | wall s | queries | q/s overall |",
        "|---:|---:|---:|---:|",
    ]
    for workers in sorted({1, args.workers, 2}):
        start = time.perf_counter()
        res = run_benchmark("nb201", ["re"], seeds=100, budget="300q", root=args.bench_dir, workers=workers)
        wall = time.perf_counter() - start
        queries = sum(r.queries for r in res.runs)
        lines.append(f"| {workers} | {wall:.2f} | {queries:,} | {queries / wall:,.0f} |")
    lines.append("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH, help="benchmarks directory")
    parser.add_argument("--seeds", type=int, default=100, help="seeds per strategy (>= 100 for part a)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--strategies", default=None, help="comma-separated; default: all registered")
    parser.add_argument("--parts", default="a,b,c", help="which parts to run: a, b, c")
    parser.add_argument("--out", type=Path, default=Path("bench-results/nb201-strategies"))
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",")}
    strategies = _strategies(args.strategies)
    info = machine_info()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    lines = [
        "# NAS-Bench-201 (CIFAR-10): search strategies",
        "",
        f"- machine: {info['machine']}; {info['platform']}",
        f"- date: {info['date']}",
        f"- Python {info['python']}, numpy {info['numpy']}, nasforge {info['nasforge']}",
        f"- command: `{command}`",
        f"- strategies: {', '.join(strategies)}",
        "",
    ]
    if "a" in parts:
        part_a(args, strategies, lines)
    if "b" in parts:
        part_b(args, strategies, lines)
    if "c" in parts:
        part_c(args, strategies, lines)
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
