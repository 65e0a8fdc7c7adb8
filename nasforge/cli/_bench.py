"""``nasforge list``, ``bench`` and ``rank``: the registered components, and strategies and
estimators compared on benchmark tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasforge._paths import ensure_writable_dir
from nasforge.cli._app import err, names_help, out, user_errors
from nasforge.cli._progress import work_progress
from nasforge.errors import ConfigError
from nasforge.registry import ESTIMATORS

__all__ = ["bench", "list_components", "rank"]


def list_components() -> None:
    """List the registered spaces, strategies, schedulers, estimators, datasets, executors and trackers.

    Other accepted names follow in parentheses: `random (rs)` means `--strategy rs` (or
    `nasforge bench --strategies rs`) is random search.
    """
    from nasforge.registry import DATASETS, ESTIMATORS, EXECUTORS, SCHEDULERS, SPACES, STRATEGIES, TRACKERS

    for reg in (SPACES, STRATEGIES, SCHEDULERS, ESTIMATORS, DATASETS, EXECUTORS, TRACKERS):
        entries = [
            f"{name} ({', '.join(aliases)})" if (aliases := reg.aliases(name)) else name
            for name in reg.names()
        ]
        out.print(f"[bold]{reg.kind}[/]: {escape(', '.join(entries))}", highlight=False)


def bench(
    benchmark: Annotated[
        str, typer.Option("--benchmark", "-b", help="Benchmark: nb201, nb301 or nb_macro.")
    ] = "nb201",
    strategies: Annotated[
        str,
        typer.Option(
            "--strategies",
            "-s",
            help="Comma-separated strategy names or aliases (rs, re, ls, ...; `nasforge list` shows them).",
        ),
    ] = "random,evolution",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Independent runs per strategy.")] = 10,
    budget: Annotated[
        str, typer.Option("--budget", help="Per run: '100q' (queries) or '12000s' (simulated seconds).")
    ] = "100q",
    bench_dir: Annotated[
        Path | None,
        typer.Option("--bench-dir", help="Benchmarks directory (or set NASFORGE_BENCH_DIR)."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Parallel processes over seeds.")] = 1,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: bench-results/<benchmark>).")
    ] = None,
) -> None:
    """Compare search strategies on a tabular or surrogate benchmark, in seconds.

    Prints mean ± std of the reported metric of each strategy's pick at checkpoints, and writes
    bench.json (every curve) and bench.png (mean ± std curves) to --out.
    """
    with user_errors():
        from nasforge.bench import run_benchmark
        from nasforge.bench._harness import format_mean_std

        names = [s.strip() for s in strategies.split(",") if s.strip()]
        ensure_writable_dir(
            out_dir if out_dir is not None else Path("bench-results") / benchmark,
            what="output directory",
            hint="give another --out DIR",
        )
        with work_progress(f"{benchmark} runs") as advance:
            result = run_benchmark(
                benchmark,
                names,
                seeds=seeds,
                budget=budget,
                root=bench_dir,
                workers=workers,
                progress=advance,
            )
        rows = result.summary()
        table = Table(
            title=f"{result.benchmark}: {result.report} of the pick, "
            f"{len(result.seeds)} seeds, budget {result.budget}",
            title_justify="left",
        )
        table.add_column("strategy")
        for cell in rows[0]["checkpoints"]:
            table.add_column(f"@ {result.checkpoint_label(cell['at'])}", justify="right")
        table.add_column("queries", justify="right")
        table.add_column("q/s", justify="right")
        for row in rows:
            table.add_row(
                row["strategy"],
                *(format_mean_std(c["mean"], c["std"]) for c in row["checkpoints"]),
                f"{row['queries_mean']:.1f}",
                f"{row['queries_per_second']:,.0f}",
            )
        out.print(table)
        folder = out_dir if out_dir is not None else Path("bench-results") / result.benchmark
        written = [result.to_json(folder / "bench.json")]
        try:
            written.append(result.plot(folder / "bench.png"))
        except ImportError as exc:
            err.print(f"[yellow]no plot:[/] {exc}", highlight=False)
        out.print(
            f"{result.meta.get('note', '')}\nwrote {', '.join(str(p) for p in written)} "
            f"in {result.meta['wall_seconds']:.1f} s",
            highlight=False,
        )


def _parse_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values read as YAML (``3`` is an int, ``[a, b]`` a list)."""
    import yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--option takes KEY=VALUE (e.g. --option proxies=[synflow,naswot]), got {item!r}"
            )
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--option {key.strip()}: cannot read the value {value!r}") from None
    return options


def rank(
    benchmark: Annotated[
        str, typer.Option("--benchmark", "-b", help="Ground truth: nb201, nb301 or nb_macro.")
    ] = "nb201",
    estimator: Annotated[
        str,
        typer.Option(
            "--estimator",
            "-e",
            help=f"Registered estimator scoring each architecture: {names_help(ESTIMATORS)}.",
        ),
    ] = "zero_cost",
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="Estimator option KEY=VALUE, repeatable (e.g. proxies=[synflow,naswot])."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="Metric to correlate, repeatable (default: every numeric one)."),
    ] = None,
    predictor: Annotated[
        str | None,
        typer.Option(
            "--predictor",
            help="Rank with a surrogate predictor (gbm, rf, mlp, gp) fitted on --train other "
            "architectures' search signal instead of an estimator.",
        ),
    ] = None,
    train: Annotated[
        int, typer.Option("--train", min=2, help="Training architectures of --predictor.")
    ] = 100,
    n: Annotated[int, typer.Option("--n", "-n", min=3, help="Architectures to score.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the sample.")] = 0,
    cells: Annotated[
        Path | None,
        typer.Option(
            "--cells",
            help="Rank the architectures listed in this file instead of --n sampled ones: one per "
            "line, an NB201 cell string |op~0|+... or a JSON object of parameters; # comments.",
        ),
    ] = None,
    ensemble: Annotated[
        list[str] | None,
        typer.Option(
            "--ensemble",
            help="Also rank a training-free ensemble of the metrics, repeatable: a name (az_nas, "
            "zc_frontier, zc_vote) or AGGREGATION:m1+m2 with AGGREGATION vote or log_rank.",
        ),
    ] = None,
    bench_dir: Annotated[
        Path | None,
        typer.Option("--bench-dir", help="Benchmarks directory (or set NASFORGE_BENCH_DIR)."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: bench-results/rank-<benchmark>).")
    ] = None,
) -> None:
    """How well does an estimator rank architectures? Spearman and Kendall against a benchmark table.

    Samples --n distinct architectures uniformly (or reads --cells), scores each with the
    estimator (networks are built for CIFAR-10's 3x32x32 inputs), correlates every metric and
    every --ensemble with the table's reported value (NB201: 200-epoch test accuracy), prints the
    table and writes rank.json and rank.png (scatter plots) to --out.
    """
    with user_errors():
        from nasforge.bench import rank_estimator

        ensure_writable_dir(
            out_dir if out_dir is not None else Path("bench-results") / f"rank-{benchmark}",
            what="output directory",
            hint="give another --out DIR",
        )
        with work_progress("architectures") as advance:
            result = rank_estimator(
                benchmark,
                estimator,
                n=n,
                seed=seed,
                root=bench_dir,
                metrics=metric or None,
                estimator_options=_parse_options(option or []),
                predictor=predictor,
                train=train,
                cells=cells,
                ensembles=ensemble or None,
                progress=advance,
            )
        table = Table(
            title=f"{result.benchmark}: {result.estimator} vs {result.truth_name}, {len(result.truth)} "
            "architectures",
            title_justify="left",
        )
        for col in ("metric", "Spearman rho", "Kendall tau"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for name, (rho, tau) in sorted(result.correlations().items(), key=lambda kv: -abs(kv[1][0] or 0)):
            table.add_row(name, f"{rho:+.3f}", f"{tau:+.3f}")
        out.print(table)
        if result.errors:
            err.print(f"[yellow]{len(result.errors)} architectures failed[/] (their scores rank last)")
        folder = out_dir if out_dir is not None else Path("bench-results") / f"rank-{result.benchmark}"
        written = [result.save(folder / "rank.json")]
        try:
            written.append(result.plot(folder / "rank.png"))
        except ImportError as exc:
            err.print(f"[yellow]no plot:[/] {exc}", highlight=False)
        median = sorted(result.seconds)[len(result.seconds) // 2]
        out.print(
            f"median {median:.3f} s per architecture; wrote {', '.join(str(p) for p in written)}",
            highlight=False,
        )
