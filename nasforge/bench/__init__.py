"""Tabular and surrogate benchmark harness (NAS-Bench-201, NAS-Bench-301, NAS-Bench-Macro).

Example:
    >>> from nasforge.bench import run_benchmark
    >>> result = run_benchmark("nb201", ["rs", "re"], seeds=10, budget="12000s")  # doctest: +SKIP
    >>> print(result.table())  # doctest: +SKIP
    >>> result.plot("bench.png")  # doctest: +SKIP
"""

from nasforge._benchdir import ENV_VAR, bench_file, bench_root
from nasforge.bench._harness import run_benchmark
from nasforge.bench._rank import RankResult, rank_correlations, rank_estimator, read_cells
from nasforge.bench._result import BenchResult, RunCurve
from nasforge.bench._specs import BENCHMARKS, BenchSpec, Budget

__all__ = [
    "BENCHMARKS",
    "ENV_VAR",
    "BenchResult",
    "BenchSpec",
    "Budget",
    "RankResult",
    "RunCurve",
    "bench_file",
    "bench_root",
    "rank_correlations",
    "rank_estimator",
    "read_cells",
    "run_benchmark",
]
