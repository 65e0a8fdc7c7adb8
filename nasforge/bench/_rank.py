"""How well does an estimator rank architectures? Spearman and Kendall against a benchmark table.

:func:`rank_estimator` samples distinct architectures of a benchmark's space uniformly, scores each
with an estimator (a zero-cost proxy, a low-fidelity table column, a fitted predictor, ...) and
correlates every metric the estimator returns with the benchmark's ground truth (NB201: the
200-epoch CIFAR-10 test accuracy). Missing or non-finite scores (a proxy of a network whose output
ignores its input) rank last, as a search would treat them.

Example:
    >>> from nasforge.bench import rank_estimator
    >>> res = rank_estimator("nb201", "nb201", n=200, metrics=["valid_acc_12ep"])  # doctest: +SKIP
    >>> print(res.table())  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.bench._result import machine_info
from nasforge.bench._specs import BENCHMARKS
from nasforge.errors import ConfigError, DataError, NasforgeError, SpaceError
from nasforge.estimate import (
    ENSEMBLES,
    Estimator,
    PredictorEstimator,
    TrialContext,
    aggregate,
    make_predictor,
    parse_ensemble,
)
from nasforge.registry import ESTIMATORS, SPACES

# Matplotlib and scipy are imported where a plot or a statistic needs them, so that `import
# nasforge` stays light.
if TYPE_CHECKING:
    from nasforge.space import Architecture, SearchSpace

__all__ = ["RankResult", "rank_correlations", "rank_estimator", "read_cells"]

#: every benchmark here is CIFAR-10: networks are built for this shape when an estimator builds them
INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def rank_correlations(scores: Sequence[float], truth: Sequence[float]) -> tuple[float, float]:
    """Spearman's rho and Kendall's tau-b of ``scores`` against ``truth``; NaN/missing scores rank last."""
    from scipy.stats import kendalltau, spearmanr

    s = np.asarray(scores, dtype=float)
    t = np.asarray(truth, dtype=float)
    s = np.where(np.isfinite(s), s, -np.inf)
    finite = s[np.isfinite(s)]
    low = (finite.min() - 1.0) if finite.size else 0.0
    s = np.where(np.isfinite(s), s, low)  # -inf / nan: below every finite score, tied together
    if np.ptp(s) == 0 or np.ptp(t) == 0:
        return math.nan, math.nan
    rho = float(spearmanr(s, t)[0])
    tau = float(kendalltau(s, t)[0])
    return rho, tau


@dataclass
class RankResult:
    """Scores of sampled architectures and their rank correlations with the ground truth.

    Attributes:
        benchmark: the benchmark name.
        estimator: the estimator's description.
        truth_name: the ground-truth metric (the benchmark's reported value).
        archs: the sampled architectures' descriptions.
        truth: the ground truth of each.
        scores: metric name -> score of each architecture (NaN where missing or failed).
        seconds: estimator seconds per architecture.
        errors: architecture index -> error message of estimator calls that failed.
        meta: machine, command options.
    """

    benchmark: str
    estimator: str
    truth_name: str
    archs: list[str]
    truth: list[float]
    scores: dict[str, list[float]]
    seconds: list[float]
    errors: dict[int, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def correlations(self) -> dict[str, tuple[float, float]]:
        """Metric name -> (Spearman rho, Kendall tau)."""
        return {m: rank_correlations(v, self.truth) for m, v in self.scores.items()}

    def table(self) -> str:
        """A markdown table of the correlations, best Spearman first."""
        rows = sorted(self.correlations().items(), key=lambda kv: -np.nan_to_num(kv[1][0], nan=-2.0))
        lines = [
            f"| metric | Spearman rho | Kendall tau | finite scores (of {len(self.truth)}) |",
            "|---|---:|---:|---:|",
        ]
        for name, (rho, tau) in rows:
            n_ok = int(np.isfinite(np.asarray(self.scores[name], dtype=float)).sum())
            lines.append(f"| {name} | {rho:+.3f} | {tau:+.3f} | {n_ok} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "benchmark": self.benchmark,
            "estimator": self.estimator,
            "truth_name": self.truth_name,
            "correlations": {
                m: {"spearman": clean(r), "kendall": clean(t)} for m, (r, t) in self.correlations().items()
            },
            "archs": self.archs,
            "truth": self.truth,
            "scores": {m: [clean(float(x)) for x in v] for m, v in self.scores.items()},
            "seconds": self.seconds,
            "errors": {str(k): v for k, v in self.errors.items()},
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON (parent folders created)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return out

    def plot(self, path: str | Path, metrics: Sequence[str] | None = None) -> Path:
        """Scatter plots of each metric (rank-transformed) against the ground truth, one panel each."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("rank plots need matplotlib: pip install matplotlib") from exc
        names = list(metrics or self.scores)[:12]
        if not names:
            raise ConfigError("nothing to plot: the estimator returned no numeric metric")
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
        truth = np.asarray(self.truth, dtype=float)
        corr = self.correlations()
        for ax, name in zip(axes.flat, names, strict=False):
            s = np.asarray(self.scores[name], dtype=float)
            ok = np.isfinite(s)
            ax.scatter(s[ok], truth[ok], s=6, alpha=0.5)
            rho, tau = corr[name]
            ax.set_title(f"{name}: rho {rho:+.2f}, tau {tau:+.2f}", fontsize=9)
            ax.set_xlabel(name)
            ax.set_ylabel(self.truth_name)
            if ok.any() and np.nanmin(s[ok]) > 0 and np.nanmax(s[ok]) / np.nanmin(s[ok]) > 1e3:
                ax.set_xscale("log")
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        fig.suptitle(f"{self.benchmark}: {self.estimator} vs {self.truth_name} (n={len(truth)})", fontsize=10)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


def _sample_distinct(space: Any, n: int, seed: int) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    seen: dict[str, Architecture] = {}
    tries = 0
    while len(seen) < n and tries < 50 * n:
        arch = space.sample(rng)
        seen.setdefault(arch.key, arch)
        tries += 1
    return list(seen.values())


def read_cells(path: str | Path, space: SearchSpace) -> list[Architecture]:
    """The architectures listed in a text file, one per line, as points of ``space``.

    A line is either a JSON object of the architecture's parameters (``{"edge0": "nor_conv_3x3",
    ...}``, what ``Architecture.to_dict()["params"]`` holds) or, for NB201, a cell string
    ``|nor_conv_3x3~0|+|...|`` (the ``archs`` that ``nasforge rank`` writes to rank.json). Blank
    lines and lines starting with ``#`` are skipped. The order is kept, repeats too.

    Raises:
        ConfigError: the file cannot be read, a line is not an architecture of ``space`` (the
            message names the line), or fewer than 3 architectures are listed.
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the cells file {str(file)!r}: {exc}") from None
    form = "a JSON object of parameters"
    if space.has_arch_str:
        form += " or an NB201 cell string |op~0|+..."
    archs: list[Architecture] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("{"):
                params = json.loads(line)
                if not isinstance(params, dict):
                    raise ValueError("not a JSON object")
                archs.append(space.make(params))
            elif space.has_arch_str:
                archs.append(space.from_arch_str(line))
            else:
                raise ValueError("not a JSON object")
        except (ValueError, SpaceError, TypeError) as exc:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise ConfigError(
                f"cells file {str(file)!r} line {number}: {shown!r} is not an architecture of the "
                f"{space.name} space ({exc}); each line is {form}"
            ) from None
    if len(archs) < 3:
        raise ConfigError(f"cells file {str(file)!r} lists {len(archs)} architectures; give at least 3")
    return archs


def _check_members(spec: str, members: Sequence[str], available: Sequence[str], verb: str) -> None:
    missing = [m for m in members if m not in available]
    if missing:
        raise ConfigError(
            f"ensemble {spec!r} needs the metrics {missing}, which the estimator {verb} "
            f"{list(available) or 'none'}); e.g. add them with --option proxies=[...]"
        )


def _add_ensembles(scores: dict[str, list[float]], rows: list[dict[str, Any]], specs: Sequence[str]) -> None:
    numeric = sorted(
        {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    )
    for spec in specs:
        members, how = parse_ensemble(spec)
        _check_members(spec, members, numeric, "did not return (it returned")
        records = [{m: float(r.get(m, math.nan)) for m in members} for r in rows]
        scores[spec] = [float(v) for v in aggregate(records, members, how)]


def rank_estimator(
    benchmark: str,
    estimator: str | Estimator,
    *,
    n: int = 200,
    seed: int = 0,
    root: str | Path | None = None,
    metrics: Sequence[str] | None = None,
    estimator_options: Mapping[str, Any] | None = None,
    predictor: str | None = None,
    train: int = 100,
    cells: str | Path | Sequence[Architecture] | None = None,
    ensembles: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RankResult:
    """Score ``n`` distinct uniformly sampled architectures of a benchmark and rank-correlate.

    Args:
        benchmark: ``"nb201"``, ``"nb301"`` or ``"nb_macro"``.
        estimator: a registered estimator name (created with ``estimator_options``; networks are
            built for CIFAR-10's 3x32x32 inputs and 10 classes) or an Estimator.
        n: architectures to score (>= 3).
        seed: seeds the sample (and the predictor's training sample).
        root: the benchmarks directory (default ``NASFORGE_BENCH_DIR``).
        metrics: the estimator's metrics to correlate; default: every numeric one.
        estimator_options: options of an estimator given by name.
        predictor: instead of an estimator, fit this predictor (``gbm``, ``rf``, ``mlp``, ``gp``)
            on ``train`` other architectures' search signal from the table, and rank with it.
        train: training architectures for ``predictor``.
        cells: rank these architectures instead of a sample: a file (see :func:`read_cells`) or
            architectures of the benchmark's space; ``n`` is then ignored.
        ensembles: training-free ensembles of the returned metrics to rank too, each a name of
            :data:`nasforge.estimate.ENSEMBLES` (``az_nas``) or ``AGGREGATION:m1+m2+...``
            (``vote`` or ``log_rank``), e.g. ``log_rank:synflow+meco``; each becomes a metric of the
            result under that name. Rank-based, so relative to the architectures ranked together.
        progress: ``fn(done, total)`` after each architecture.

    Raises:
        ConfigError: unknown benchmark, estimator or metric; bad ``n``.
        DataError: the benchmark files are missing.
    """
    if benchmark not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; valid benchmarks: {', '.join(BENCHMARKS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 3:
        raise ConfigError(f"n must be an integer >= 3, got {n=}")
    spec = BENCHMARKS[benchmark]
    space = SPACES.create(spec.space).bind(INPUT_SHAPE, NUM_CLASSES)
    table = ESTIMATORS.create(spec.estimator, root=root, **dict(spec.options))
    if cells is None:
        archs = _sample_distinct(space, n, seed)
    elif isinstance(cells, (str, Path)):
        archs = read_cells(cells, space)
    else:
        archs = [space.make(a.params) for a in cells]
    named = (estimator_options or {}).get("proxies") if isinstance(estimator, str) else None
    if isinstance(named, (list, tuple)):  # proxies=[az_nas]: score its members, rank the ensemble too
        extra = [p for p in named if isinstance(p, str) and (p in ENSEMBLES or ":" in p)]
        ensembles = [*(ensembles or []), *(e for e in extra if e not in (ensembles or []))]
    if ensembles:
        for ensemble in ensembles:  # bad names fail before any architecture is scored
            parse_ensemble(ensemble)

    def truth_of(arch: Architecture, metric: str) -> float:
        return float(table.evaluate(arch, TrialContext(0, 0))[metric])

    if predictor is not None:
        if isinstance(train, bool) or not isinstance(train, int) or train < 2:
            raise ConfigError(f"train must be an integer >= 2, got {train=}")
        keys = {a.key for a in archs}
        pool = [a for a in _sample_distinct(space, n + train, seed + 1) if a.key not in keys][:train]
        fitted = make_predictor(predictor, seed=seed).fit(pool, [truth_of(a, spec.signal) for a in pool])
        est: Estimator = PredictorEstimator(fitted, metric=f"{predictor}_{spec.signal}")
        label = f"predictor {predictor} fitted on {len(pool)} architectures' {spec.signal}"
    elif isinstance(estimator, str):
        options = dict(estimator_options or {})
        if "root" in inspect.signature(ESTIMATORS.get(estimator)).parameters:
            options.setdefault("root", root)  # a table estimator reads the same benchmarks directory
        try:
            est = ESTIMATORS.create(estimator, **options)
        except (TypeError, ValueError) as exc:  # a wrongly typed option the constructor tripped on
            if isinstance(exc, NasforgeError):
                raise
            raise ConfigError(f"estimator '{estimator}' cannot take options {options}: {exc}") from None
        label = estimator + (f" {dict(estimator_options)}" if estimator_options else "")
    elif isinstance(estimator, Estimator):
        est, label = estimator, type(estimator).__name__
    else:
        raise ConfigError(f"estimator must be a registered name or an Estimator, got {estimator!r}")

    declared = est.proxies  # a ZeroCostEstimator says what it will return
    if ensembles and declared is not None:
        for ensemble in ensembles:  # fail before scoring, not after
            _check_members(ensemble, parse_ensemble(ensemble)[0], declared, "does not compute (it computes")
    truth: list[float] = []
    rows: list[dict[str, Any]] = []
    seconds: list[float] = []
    errors: dict[int, str] = {}
    for i, arch in enumerate(archs):
        truth.append(truth_of(arch, spec.report))
        start = time.perf_counter()
        try:
            rows.append(dict(est.evaluate(arch, TrialContext(i, seed))))
        except (ConfigError, SpaceError, DataError):
            raise  # the estimator cannot score this space at all (no builder, no data): say so once
        except NasforgeError as exc:  # TrialFailed and the like: this architecture only
            rows.append({})
            errors[i] = str(exc)
        except Exception as exc:  # one architecture's crash is recorded, the ranking goes on
            rows.append({})
            errors[i] = f"{type(exc).__name__}: {exc}"
        seconds.append(time.perf_counter() - start)
        if progress is not None:
            progress(i + 1, len(archs))

    numeric = sorted(
        {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    )
    wanted = list(metrics) if metrics else numeric
    unknown = [m for m in wanted if m not in numeric]
    if unknown:
        raise ConfigError(
            f"the estimator returned no numeric metric {unknown}; it returned {numeric or 'none'}"
        )
    scores = {m: [float(r.get(m, math.nan)) for r in rows] for m in wanted}
    if ensembles:
        _add_ensembles(scores, rows, ensembles)
    return RankResult(
        benchmark=benchmark,
        estimator=label,
        truth_name=spec.report,
        archs=[space.describe(a) for a in archs],
        truth=truth,
        scores=scores,
        seconds=seconds,
        errors=errors,
        meta={
            **machine_info(),
            "n": len(archs),
            "seed": seed,
            "cells": None if cells is None else str(cells) if isinstance(cells, (str, Path)) else "given",
            "note": spec.note,
        },
    )
