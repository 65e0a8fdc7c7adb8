"""``nasforge show`` and ``nasforge report``: read a run (safe while its search still runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nasforge.cli._app import out, user_errors
from nasforge.cli._tables import (
    describe_arch,
    final_scores,
    leaderboard_table,
    print_test_report,
    race_table,
)

__all__ = ["report", "show"]


def show(
    run: Annotated[Path, typer.Argument(help="A run directory (runs/<name>).")],
    top: Annotated[
        int, typer.Option("--top", min=1, help="Rows in the leaderboard (also with --json).")
    ] = 10,
    failures: Annotated[
        bool, typer.Option("--failures", help="Also list failed trials with their errors (also with --json).")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON instead: trials (the --top best completed trials, each with its params), "
            "final (the final training, or null) and, with --failures, failures (every failed trial "
            "with its error's last line).",
        ),
    ] = False,
) -> None:
    """Print the trials and the best architecture of a run."""
    with user_errors():
        from nasforge.experiment import Experiment, RunDir

        exp = Experiment.open(run, read_only=True)  # safe while the search is still running
        final_path = RunDir(run).final
        final = json.loads(final_path.read_text()) if final_path.is_file() else None
        if as_json:
            rows = [{**t.summary(), "params": dict(t.architecture.params)} for t in exp.leaderboard(top)]
            payload: dict[str, Any] = {"trials": rows, "final": final}
            if failures:
                payload["failures"] = [
                    {**t.summary(), "params": dict(t.architecture.params)}
                    for t in exp.trials
                    if t.state.value == "FAIL"
                ]
            out.print_json(json.dumps(payload, default=str))
            return
        counts: dict[str, int] = {}
        for t in exp.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        out.print(
            f"[bold]{exp.name}[/] in {run}: " + ", ".join(f"{v} {k.lower()}" for k, v in counts.items()),
            highlight=False,
        )
        out.print(leaderboard_table(exp, top, out.width))
        best = exp.best()
        if best is not None:
            out.print(f"best: trial {best.number}, {describe_arch(best.architecture)}", highlight=False)
        if final is not None and final.get("race"):
            out.print(race_table(final["race"], exp, out.width))
        if final is not None:
            m = final["final_metrics"]
            params = f", {m['params']:,} parameters" if isinstance(m.get("params"), int) else ""
            out.print(f"final training: {final_scores(m)}{params}", highlight=False)
            print_test_report(final.get("test_report"))
        if failures:
            for t in exp.trials:
                if t.state.value == "FAIL":
                    last = (t.error or "").strip().splitlines()[-1:] or ["?"]
                    out.print(f"trial {t.number}: {last[0]}", highlight=False)


def report(
    run: Annotated[
        Path, typer.Argument(help="A run directory, e.g. runs/digits-evolution (holds nasforge.db).")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Directory for index.html and the PNGs (default: RUN/report)."),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the leaderboard.")] = 10,
) -> None:
    """Write an HTML report of a run and print its path.

    One self-contained page (plots embedded, no server, opens from disk): summary, leaderboard,
    search trajectory, Pareto front (two or more objectives), parameter importance, diagrams of
    the top 3 architectures and failures; the PNGs are written beside it. Only reads the run, so
    it is safe while the search is still running.
    """
    with user_errors():
        from nasforge.report import write_report

        path = write_report(run, out_dir, top=top)
        out.print(str(path), highlight=False, soft_wrap=True)
