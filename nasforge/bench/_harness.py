"""Run search strategies on tabular / surrogate benchmarks and aggregate their anytime curves.

Every (strategy, seed) pair is an independent search through the public API: a fresh in-memory
:class:`~nasforge.experiment.Experiment` seeded with ``seed``, the strategy created by name, and the
benchmark's estimator. After each query the harness records the query count, the simulated seconds
spent so far, the incumbent's search signal (the best one so far) and the incumbent's *reported*
value. The reported value is what a paper's table shows: on NAS-Bench-201 the search sees the
12-epoch validation accuracy and the table reports the 200-epoch test accuracy of the architecture
with the best validation accuracy so far (the NAS-Bench-201 protocol).

Example:
    >>> from nasforge.bench import run_benchmark
    >>> result = run_benchmark("nb201", ["random", "evolution"], seeds=5, budget="100q")  # doctest: +SKIP
    >>> print(result.table())  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._benchdir import bench_root
from nasforge.bench._result import BenchResult, RunCurve, machine_info
from nasforge.bench._result import format_mean_std as format_mean_std  # the CLI imports it from here
from nasforge.bench._specs import BENCHMARKS, BenchSpec, Budget
from nasforge.errors import ConfigError, NasforgeError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment, Trial, TrialState
from nasforge.registry import ESTIMATORS, SPACES, STRATEGIES
from nasforge.space import SearchSpace

__all__ = ["run_benchmark"]

MAX_FAILURES_IN_A_ROW = 50


class _Recorder:
    """Experiment callback that appends one curve point per finished query."""

    def __init__(self, curve: RunCurve, signal: str, report: str) -> None:
        self.curve = curve
        self.signal_name = signal
        self.report_name = report
        self.spent = 0.0
        self.best_signal = -math.inf
        self.best_report = math.nan
        self.failures_in_a_row = 0

    def __call__(self, exp: Experiment | None, trial: Trial) -> None:
        metrics = trial.metrics
        self.spent += float(metrics.get("sim_seconds", 0.0))
        if trial.state is TrialState.COMPLETE and trial.feasible:
            value = float(metrics[self.signal_name])
            if value > self.best_signal:  # ties keep the earlier incumbent
                self.best_signal = value
                self.best_report = float(metrics.get(self.report_name, math.nan))
        self.failures_in_a_row = self.failures_in_a_row + 1 if trial.state is TrialState.FAIL else 0
        c = self.curve
        c.sim_seconds.append(self.spent)
        c.signal.append(self.best_signal if self.best_signal > -math.inf else math.nan)
        c.report.append(self.best_report)


# ---------------------------------------------------------------------------------------------- running
@dataclass
class _Loaded:
    spec: BenchSpec
    space: SearchSpace
    estimator: Estimator


def _load(benchmark: str, root: str | None) -> _Loaded:
    spec = BENCHMARKS[benchmark]
    space = SPACES.create(spec.space).bind(spec.input_shape, spec.num_classes)
    estimator = ESTIMATORS.create(spec.estimator, root=root, **dict(spec.options))
    # one query now loads the table (or the ONNX session), so no run's speed includes loading
    estimator.evaluate(space.sample(np.random.default_rng(0)), TrialContext(0, 0))
    return _Loaded(spec, space, estimator)


def _run_one(
    bench: _Loaded, label: str, strategy: str, seed: int, budget: Budget, options: Mapping[str, Any]
) -> RunCurve:
    start = time.perf_counter()
    spec = bench.spec
    curve = RunCurve(label, int(seed))
    record = _Recorder(curve, spec.signal, spec.report)
    exp = Experiment(
        f"{spec.name}-{label}-seed{seed}", space=bench.space, objectives=[spec.signal], seed=int(seed)
    )
    if budget.unit == "queries":
        exp.run(
            strategy,
            bench.estimator,
            n_trials=budget.queries,
            callbacks=(record,),
            strategy_options=dict(options),
        )
    else:
        # Ask and tell by hand: the cost of a query is known only once it is evaluated, and the
        # query that would exceed the budget is not told (the run ends before it).
        exp.set_strategy(strategy, **options)
        while record.failures_in_a_row < MAX_FAILURES_IN_A_ROW:
            trial = exp.ask()
            if trial is None:
                break
            ev = exp.evaluate(trial, bench.estimator)  # a scheduler may stop it early (PRUNED)
            if ev.error is not None:  # as in Experiment.run: a failure costs a query, the run goes on
                record(exp, exp.tell(trial, ev.metrics, error=ev.error))
                continue
            if "sim_seconds" not in ev.metrics:
                raise ConfigError(
                    f"benchmark '{spec.name}' reports no simulated cost (sim_seconds); "
                    "use a query budget such as '100q'"
                )
            if record.spent + float(ev.metrics["sim_seconds"]) > budget.amount:
                break
            record(exp, exp.tell(trial, ev.metrics, pruned=ev.pruned))
    curve.wall_seconds = time.perf_counter() - start
    return curve


_WORKER: dict[str, _Loaded] = {}  # per worker process: the benchmark, loaded once


def _init_worker(benchmark: str, root: str | None) -> None:
    _WORKER["bench"] = _load(benchmark, root)


def _run_chunk(
    jobs: Sequence[tuple[str, str, int]], budget: Budget, options: Mapping[str, Mapping[str, Any]]
) -> list[RunCurve]:
    bench = _WORKER["bench"]
    return [_run_one(bench, label, name, seed, budget, options.get(label, {})) for label, name, seed in jobs]


def run_benchmark(
    benchmark: str,
    strategies: Sequence[str],
    *,
    seeds: int | Sequence[int] = 10,
    budget: str | Budget = "100q",
    root: str | Path | None = None,
    workers: int = 1,
    strategy_options: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoints: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BenchResult:
    """Run every strategy with every seed on a benchmark and collect the anytime curves.

    Args:
        benchmark: ``"nb201"``, ``"nb301"`` or ``"nb_macro"`` (see :data:`BENCHMARKS`).
        strategies: registered strategy names or aliases (``"rs"``, ``"re"``, ``"bananas"``...),
            or one comma-separated string of them.
        seeds: a number of seeds (``0 .. seeds - 1``) or the seeds themselves.
        budget: ``"100q"`` (queries) or ``"12000s"`` (simulated seconds: the run stops before the
            query that would exceed it). Deduplicated proposals cost nothing.
        root: the benchmarks directory; default ``NASFORGE_BENCH_DIR``.
        workers: processes; > 1 runs chunks of seeds in parallel (each worker loads the benchmark
            once). The curves are identical to ``workers=1``.
        strategy_options: per-strategy constructor options, keyed by the names given in
            ``strategies``.
        checkpoints: where :meth:`BenchResult.table` aggregates (queries or seconds, following the
            budget); default: 10, 25, 50, 100, 150, 200, 300 queries up to the budget, or 10 %, 25 %,
            50 %, 75 % and 100 % of a time budget.
        progress: ``fn(runs_done, runs_total)`` called as runs finish.

    Returns:
        the :class:`BenchResult`.

    Raises:
        ConfigError: unknown benchmark or strategy, bad budget, seeds or options.
        DataError: the benchmark files are missing.
    """
    if benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; valid benchmarks: {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[benchmark]
    budget = Budget.parse(budget)
    if isinstance(strategies, str):
        strategies = [s for s in strategies.split(",") if s.strip()]
    labels = [s.strip() for s in strategies]
    if not labels:
        raise ConfigError("run_benchmark needs at least one strategy, e.g. ['random', 'evolution']")
    names = [STRATEGIES.canonical_name(s) for s in labels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"strategies {labels} name {dupes} more than once")
    seed_list = _seed_list(seeds)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers=}")
    options = {k: dict(v) for k, v in (strategy_options or {}).items()}
    by_name = dict(zip(names, labels, strict=True))
    for key in list(options):
        label = key if key in labels else by_name.get(_canonical_or_none(key) or "")
        if label is None:
            raise ConfigError(
                f"strategy_options has options for {key!r}, which is not in strategies {labels}"
            )
        options[label] = options.pop(key)
    resolved = str(bench_root(root))

    jobs = [(label, name, seed) for seed in seed_list for label, name in zip(labels, names, strict=True)]
    started = time.perf_counter()
    runs: list[RunCurve] = []
    if workers == 1 or len(seed_list) == 1:
        bench = _load(benchmark, resolved)
        for i, (label, name, seed) in enumerate(jobs):
            runs.append(_run_one(bench, label, name, seed, budget, options.get(label, {})))
            if progress is not None:
                progress(i + 1, len(jobs))
    else:
        runs = _run_parallel(benchmark, resolved, jobs, seed_list, budget, options, workers, progress)
    wall = time.perf_counter() - started

    order = {(label, seed): i for i, (label, _, seed) in enumerate(jobs)}
    runs.sort(key=lambda r: (labels.index(r.strategy), order[(r.strategy, r.seed)]))
    return BenchResult(
        benchmark=benchmark,
        budget=budget,
        strategies=labels,
        seeds=seed_list,
        signal=spec.signal,
        report=spec.report,
        optimum=spec.optimum,
        runs=runs,
        checkpoints=list(checkpoints) if checkpoints is not None else None,
        meta={
            **machine_info(),
            "workers": workers,
            "wall_seconds": wall,
            "strategy_names": dict(zip(labels, names, strict=True)),
            "strategy_options": options,
            "note": spec.note,
        },
    )


def _canonical_or_none(name: str) -> str | None:
    try:
        return STRATEGIES.canonical_name(name)
    except NasforgeError:
        return None


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {seeds=}")
        return list(range(int(seeds)))
    out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in out):
        raise ConfigError(f"seeds must be a count or a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"seeds must be distinct, got {out}")
    return [int(s) for s in out]


def _run_parallel(
    benchmark: str,
    root: str,
    jobs: list[tuple[str, str, int]],
    seeds: list[int],
    budget: Budget,
    options: Mapping[str, Mapping[str, Any]],
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> list[RunCurve]:
    workers = min(workers, len(seeds))
    # a few chunks per worker balance the load; a chunk holds whole seeds (all strategies)
    n_chunks = min(len(seeds), workers * 4)
    chunks = []
    for part in np.array_split(np.asarray(seeds), n_chunks):
        members = set(part.tolist())
        chunks.append([j for j in jobs if j[2] in members])
    # The platform's default start method (fork on Linux before Python 3.14): the benchmark is never
    # loaded in this process when workers > 1, so a forked worker inherits no estimator state.
    runs: list[RunCurve] = []
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(benchmark, root)
    ) as pool:
        futures = [pool.submit(_run_chunk, chunk, budget, options) for chunk in chunks]
        for fut in as_completed(futures):
            runs.extend(fut.result())
            if progress is not None:
                progress(len(runs), len(jobs))
    return runs
