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

import datetime as dt
import json
import math
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError, NasforgeError

if TYPE_CHECKING:
    from nasforge.estimate import Estimator
    from nasforge.experiment import Experiment, Trial
    from nasforge.space import SearchSpace

__all__ = ["BENCHMARKS", "BenchResult", "BenchSpec", "Budget", "RunCurve", "run_benchmark"]

QUERY_CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300)
SECOND_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)
MAX_FAILURES_IN_A_ROW = 50


@dataclass(frozen=True)
class BenchSpec:
    """What a benchmark searches and what it reports.

    Attributes:
        name: the benchmark name (``"nb201"``).
        space: registered space name.
        estimator: registered estimator name (created with ``root=`` and ``options``).
        signal: metric the search maximises.
        report: metric reported for the incumbent (the architecture with the best signal so far).
        optimum: best possible reported value (for regret plots), or None if unknown.
        options: extra estimator keyword arguments.
        note: one line on the protocol, shown in tables and JSON.
        input_shape: the benchmark dataset's input (C, H, W); the space is bound to it, so that
            strategies that build networks (zero-cost proxies) build the benchmark's own.
        num_classes: its class count.
    """

    name: str
    space: str
    estimator: str
    signal: str
    report: str
    optimum: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    input_shape: tuple[int, int, int] = (3, 32, 32)  # all three tables are CIFAR-10
    num_classes: int = 10


BENCHMARKS: dict[str, BenchSpec] = {
    "nb201": BenchSpec(
        "nb201",
        space="nb201",
        estimator="nb201",
        signal="valid_acc_12ep",
        report="test_acc",
        optimum=94.3733,  # max test_acc of the CIFAR-10 table (indices 6111 and 13714)
        note="NAS-Bench-201 CIFAR-10: search on 12-epoch validation accuracy, report 200-epoch "
        "test accuracy (%) of the incumbent",
    ),
    "nb301": BenchSpec(
        "nb301",
        space="darts",
        estimator="nb301",
        signal="val_accuracy",
        report="val_accuracy",
        options={"epoch": 98},
        note="NAS-Bench-301 surrogate (YAHPO v2): search on and report predicted validation "
        "accuracy (0-1) at epoch 98; the surrogate predicts no test accuracy",
    ),
    "nb_macro": BenchSpec(
        "nb_macro",
        space="nb_macro",
        estimator="nb_macro",
        signal="test_acc",
        report="test_acc",
        optimum=93.126663,  # test_acc (mean of 3 seeds) of "22212220"
        note="NAS-Bench-Macro CIFAR-10: the table has no separate validation accuracy, so the "
        "search signal and the report are both the mean test accuracy (%) over 3 seeds",
    ),
}


# ---------------------------------------------------------------------------------------------- budget
_BUDGET_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*(q|queries|s|sec|seconds)\s*$")


@dataclass(frozen=True)
class Budget:
    """A search budget: a number of queries, or simulated seconds (the sum of ``sim_seconds``).

    Args:
        amount: the number of queries (an integer >= 1) or seconds (> 0).
        unit: ``"queries"`` or ``"seconds"``.

    Example:
        >>> Budget.parse("12000s")
        Budget(amount=12000.0, unit='seconds')
        >>> str(Budget.parse("100q"))
        '100q'
    """

    amount: float
    unit: str = "queries"

    def __post_init__(self) -> None:
        if self.unit not in ("queries", "seconds"):
            raise ConfigError(f"budget unit must be 'queries' or 'seconds', got unit={self.unit!r}")
        if not isinstance(self.amount, (int, float)) or not math.isfinite(self.amount) or self.amount <= 0:
            raise ConfigError(f"a budget must be a positive number, got amount={self.amount!r}")
        if self.unit == "queries" and float(self.amount) != int(self.amount):
            raise ConfigError(f"a query budget must be a whole number, got amount={self.amount!r}")

    @classmethod
    def parse(cls, value: str | Budget) -> Budget:
        """Read ``"100q"`` (100 queries) or ``"12000s"`` (12,000 simulated seconds)."""
        if isinstance(value, Budget):
            return value
        match = _BUDGET_RE.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(
                f"cannot read budget {value!r}; write '100q' for 100 queries or '12000s' for 12,000 "
                "simulated seconds"
            )
        amount = float(match.group(1))
        if match.group(2).startswith("q"):
            return cls(amount, "queries")
        return cls(amount, "seconds")

    @property
    def queries(self) -> int | None:
        """The query count of a query budget, else None."""
        return int(self.amount) if self.unit == "queries" else None

    def __str__(self) -> str:
        return f"{int(self.amount)}q" if self.unit == "queries" else f"{self.amount:g}s"


# ---------------------------------------------------------------------------------------------- curves
@dataclass
class RunCurve:
    """The anytime curve of one (strategy, seed) run; entry ``i`` is the state after query ``i + 1``.

    Attributes:
        strategy: the strategy label as given to :func:`run_benchmark`.
        seed: the experiment seed.
        sim_seconds: cumulative simulated seconds.
        signal: the incumbent's search signal (NaN before the first completed query).
        report: the incumbent's reported value (NaN likewise).
        wall_seconds: wall-clock time of the whole run (experiment creation included).
    """

    strategy: str
    seed: int
    sim_seconds: list[float] = field(default_factory=list)
    signal: list[float] = field(default_factory=list)
    report: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def queries(self) -> int:
        """Number of queries made."""
        return len(self.signal)

    def value_at(self, point: float, axis: str = "queries") -> float:
        """The reported value after ``point`` queries (or simulated seconds).

        A run that stopped earlier (budget or strategy exhausted) keeps its final pick; before the
        first query (or the first completed one) the value is NaN.
        """
        return float(self.values_along([point], axis)[0])

    def values_along(self, points: Sequence[float] | np.ndarray, axis: str = "queries") -> np.ndarray:
        """:meth:`value_at` for many points at once."""
        pts = np.asarray(points, dtype=float)
        if axis == "queries":
            n = np.minimum(np.floor(pts), self.queries).astype(int)
        elif axis == "seconds":
            n = np.searchsorted(np.asarray(self.sim_seconds, dtype=float), pts, side="right")
        else:
            raise ConfigError(f"axis must be 'queries' or 'seconds', got {axis!r}")
        report = np.asarray([math.nan, *self.report], dtype=float)
        return report[np.maximum(n, 0)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "wall_seconds": self.wall_seconds,
            "sim_seconds": self.sim_seconds,
            "signal": [_json_float(v) for v in self.signal],
            "report": [_json_float(v) for v in self.report],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunCurve:
        return cls(
            strategy=str(data["strategy"]),
            seed=int(data["seed"]),
            sim_seconds=[float(v) for v in data["sim_seconds"]],
            signal=[math.nan if v is None else float(v) for v in data["signal"]],
            report=[math.nan if v is None else float(v) for v in data["report"]],
            wall_seconds=float(data.get("wall_seconds", 0.0)),
        )


def _json_float(v: float) -> float | None:
    return v if math.isfinite(v) else None


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
        from nasforge.experiment import TrialState

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
    from nasforge.estimate import TrialContext
    from nasforge.registry import ESTIMATORS, SPACES

    spec = BENCHMARKS[benchmark]
    space = SPACES.create(spec.space).bind(spec.input_shape, spec.num_classes)
    estimator = ESTIMATORS.create(spec.estimator, root=root, **dict(spec.options))
    # one query now loads the table (or the ONNX session), so no run's speed includes loading
    estimator.evaluate(space.sample(np.random.default_rng(0)), TrialContext(0, 0))
    return _Loaded(spec, space, estimator)


def _run_one(
    bench: _Loaded, label: str, strategy: str, seed: int, budget: Budget, options: Mapping[str, Any]
) -> RunCurve:
    from nasforge.experiment import Experiment

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
    from nasforge.bench._paths import bench_root
    from nasforge.registry import STRATEGIES

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
    from nasforge.registry import STRATEGIES

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
    from concurrent.futures import ProcessPoolExecutor, as_completed

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


def machine_info() -> dict[str, Any]:
    """Machine, Python, library versions and the date, for benchmark reports."""
    import nasforge
    from nasforge._threads import available_cpus

    cores = available_cpus()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu}, {cores} cores available",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nasforge": nasforge.__version__,
    }


# ---------------------------------------------------------------------------------------------- result
@dataclass
class BenchResult:
    """All curves of a benchmark run, with aggregation, a markdown table, JSON and a plot.

    Attributes:
        benchmark: the benchmark name.
        budget: the budget each run had.
        strategies: strategy labels, in the order given.
        seeds: the seeds.
        signal: the metric searched on; report: the metric reported for the incumbent.
        optimum: best possible reported value, or None.
        runs: one :class:`RunCurve` per (strategy, seed), by strategy then seed.
        checkpoints: aggregation points (None: the defaults for the budget).
        meta: machine, date, versions, workers, total wall time, strategy options.
    """

    benchmark: str
    budget: Budget
    strategies: list[str]
    seeds: list[int]
    signal: str
    report: str
    optimum: float | None
    runs: list[RunCurve]
    checkpoints: list[float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def axis(self) -> str:
        """``"queries"`` or ``"seconds"``: the unit of the budget and the checkpoints."""
        return self.budget.unit

    def default_checkpoints(self) -> list[float]:
        """The checkpoints used when none were given."""
        if self.budget.unit == "queries":
            n = int(self.budget.amount)
            return [float(c) for c in QUERY_CHECKPOINTS if c < n] + [float(n)]
        return [self.budget.amount * f for f in SECOND_FRACTIONS]

    def runs_of(self, strategy: str) -> list[RunCurve]:
        """The runs of one strategy, by seed."""
        return [r for r in self.runs if r.strategy == strategy]

    def values_at(self, strategy: str, point: float, axis: str | None = None) -> np.ndarray:
        """The reported value of every run of ``strategy`` at ``point`` (NaN where undefined)."""
        return np.asarray(
            [r.values_along([point], axis or self.axis)[0] for r in self.runs_of(strategy)], dtype=float
        )

    def summary(self, checkpoints: Sequence[float] | None = None) -> list[dict[str, Any]]:
        """Per strategy: mean, std (numpy's population std) and run count at each checkpoint.

        Returns:
            rows ``{"strategy", "checkpoints": [{"at", "mean", "std", "n"}...], "queries_mean",
            "queries_per_second"}``; NaN values (no completed query yet) are left out of mean/std.
        """
        points = list(checkpoints or self.checkpoints or self.default_checkpoints())
        rows = []
        for strategy in self.strategies:
            runs = self.runs_of(strategy)
            cells = []
            for p in points:
                vals = self.values_at(strategy, p)
                ok = vals[np.isfinite(vals)]
                cells.append(
                    {
                        "at": p,
                        "mean": float(ok.mean()) if ok.size else math.nan,
                        "std": float(ok.std()) if ok.size else math.nan,
                        "n": int(ok.size),
                    }
                )
            queries = sum(r.queries for r in runs)
            wall = sum(r.wall_seconds for r in runs)
            rows.append(
                {
                    "strategy": strategy,
                    "checkpoints": cells,
                    "queries_mean": queries / len(runs) if runs else math.nan,
                    "queries_per_second": queries / wall if wall > 0 else math.nan,
                }
            )
        return rows

    def checkpoint_label(self, point: float) -> str:
        """``"100 q"`` or ``"12000 s"``."""
        return f"{point:g} q" if self.axis == "queries" else f"{point:g} s"

    def table(self, checkpoints: Sequence[float] | None = None) -> str:
        """A markdown table: strategy, ``mean ± std`` of the reported value at each checkpoint,
        mean queries per run and queries per second through the API."""
        rows = self.summary(checkpoints)
        points = [c["at"] for c in rows[0]["checkpoints"]] if rows else []
        head = [
            "strategy",
            *(f"{self.report} @ {self.checkpoint_label(p)}" for p in points),
            "queries",
            "q/s",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for row in rows:
            cells = [format_mean_std(c["mean"], c["std"]) for c in row["checkpoints"]]
            lines.append(
                f"| {row['strategy']} | "
                + " | ".join(cells)
                + f" | {row['queries_mean']:.1f} | {row['queries_per_second']:,.0f} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN written as null)."""

        def clean(obj: Any) -> Any:
            if isinstance(obj, float):
                return _json_float(obj)
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [clean(v) for v in obj]
            return obj

        return {
            "benchmark": self.benchmark,
            "budget": str(self.budget),
            "strategies": self.strategies,
            "seeds": self.seeds,
            "signal": self.signal,
            "report": self.report,
            "optimum": self.optimum,
            "checkpoints": self.checkpoints,
            "meta": clean(self.meta),
            "summary": clean(self.summary()),
            "runs": [r.to_dict() for r in self.runs],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":"), default=str))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> BenchResult:
        """Read a file written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                benchmark=data["benchmark"],
                budget=Budget.parse(data["budget"]),
                strategies=list(data["strategies"]),
                seeds=[int(s) for s in data["seeds"]],
                signal=data["signal"],
                report=data["report"],
                optimum=data.get("optimum"),
                runs=[RunCurve.from_dict(r) for r in data["runs"]],
                checkpoints=data.get("checkpoints"),
                meta=dict(data.get("meta") or {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a nasforge benchmark result: {exc}") from None

    def plot(self, path: str | Path, *, axis: str | None = None, regret: bool = False) -> Path:
        """Save a PNG of mean ± std of the reported value per strategy (see :func:`plot_result`)."""
        from nasforge.bench._plot import plot_result

        return plot_result(self, path, axis=axis, regret=regret)


def format_mean_std(mean: float, std: float) -> str:
    """``93.70 ± 0.36`` (percentages) or ``0.9243 ± 0.0031`` (fractions); ``-`` if undefined."""
    if not math.isfinite(mean):
        return "-"
    digits = 4 if abs(mean) <= 1.5 else 2
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
