"""The HTML report of a run: one self-contained page (every plot embedded) plus the PNGs beside it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

import yaml

from nasforge._paths import ensure_writable_dir
from nasforge._version import __version__
from nasforge.errors import ConfigError, NasforgeError
from nasforge.experiment import Experiment, OptunaStorage, Trial, TrialState, write_pareto
from nasforge.experiment._rundir import RunDir, atomic_write
from nasforge.report._detection import DETECTION_PNGS, detection_section, is_detection_run
from nasforge.report._diagrams import draw_architecture
from nasforge.report._final import final_section, read_final
from nasforge.report._format import (
    arch_cell,
    describe_arch,
    error_line,
    esc,
    failure_reason,
    img,
    kv,
    note,
    num,
    seconds,
    table,
    when,
)
from nasforge.report._importance import param_importance
from nasforge.report._plots import plot_importance, plot_trajectory
from nasforge.report._race import race_section

__all__ = ["REPORT_DIR", "write_report"]

REPORT_DIR = RunDir.REPORT
INDEX = "index.html"
TRAJECTORY_PNG = "trajectory.png"
IMPORTANCE_PNG = "importance.png"
N_DIAGRAMS = 3
#: every file a report may write; those a new report does not write again are removed
_OUTPUTS = (
    TRAJECTORY_PNG,
    IMPORTANCE_PNG,
    RunDir.PARETO_PNG,
    RunDir.PARETO_JSON,
    "confusion.png",
    *(f"arch_{i}.png" for i in range(1, 4)),
    *DETECTION_PNGS,
)
_EXTRA_METRICS = ("params", "flops", "latency_ms", "train_seconds", "sim_seconds", "epochs")
#: a detection run's leaderboard shows its other mAP figures first
_DETECTION_METRICS = ("val_map", "val_map_50", "val_map_75")


def write_report(run: Experiment | str | Path, out_dir: str | Path | None = None, *, top: int = 10) -> Path:
    """Write an HTML report of a run: summary, leaderboard, plots, top architectures, failures.

    The page embeds every plot as a data URI and loads nothing from elsewhere, so it opens from
    disk anywhere (mail it, archive it); the PNGs are also written beside it. The run is only
    read: a report of a search that is still running shows the trials finished so far, and the
    database stays as ``optuna-dashboard`` reads it.

    Args:
        run: an :class:`~nasforge.experiment.Experiment`, or a run directory (opened read-only).
        out_dir: where to write ``index.html`` and the PNGs; default ``<run dir>/report``.
        top: rows of the leaderboard.

    Returns:
        The path of ``index.html``.

    Raises:
        ConfigError: ``run`` is not a run directory, ``top`` is not a positive integer, an
            experiment without a run directory is given no ``out_dir``, or ``out_dir`` cannot be
            written (a file, below a file, read-only).
        NasforgeError: writing fails midway (disk full).

    Example:
        >>> from nasforge.report import write_report
        >>> write_report("runs/digits-evolution")  # doctest: +SKIP
        PosixPath('runs/digits-evolution/report/index.html')
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a positive integer, got {top=}")
    if isinstance(run, Experiment):
        exp = run
    elif isinstance(run, str | Path):
        exp = Experiment.open(run, read_only=True)  # safe while the search is still running
    else:
        raise ConfigError(f"run must be an Experiment or a run directory, got {type(run).__name__}")
    if out_dir is None:
        if exp.run_dir is None:
            raise ConfigError(f"experiment '{exp.name}' has no run directory; pass out_dir")
        out_dir = exp.run_dir / REPORT_DIR
    target = Path(out_dir)
    ensure_writable_dir(target, what="report directory", hint="give another directory (--out DIR)")
    try:
        target.mkdir(parents=True, exist_ok=True)
        page = _Page(exp, target, top)
        html = page.render()
        for name in set(_OUTPUTS) - page.written:  # left by an earlier report of this run
            (target / name).unlink(missing_ok=True)
        path = target / INDEX
        atomic_write(path, html)
    except OSError as exc:
        raise NasforgeError(f"could not write the report to {target}: {exc.strerror or exc}") from None
    return path


# ---------------------------------------------------------------------- the page
class _Page:
    """Builds the sections of one report; ``written`` collects the files it wrote."""

    def __init__(self, exp: Experiment, out: Path, top: int) -> None:
        self.exp = exp
        self.out = out
        self.top = top
        self.trials = exp.trials
        self.objective = exp.objective
        self.primary = exp.objective.names[0]
        self.written: set[str] = set()
        self.detection = is_detection_run(exp)

    def render(self) -> str:
        sections = [
            ("summary", "Summary", self.summary()),
            ("leaderboard", "Leaderboard", self.leaderboard()),
            ("trajectory", "Search trajectory", self.trajectory()),
        ]
        if self.detection:  # mAP and boxes; accuracy and a confusion matrix mean nothing here
            detected = detection_section(self.exp, self.out, self._plot, kv, self._config())
            sections.append(("final", "Final detector (test split)", detected))
        else:
            race = race_section((read_final(self.exp.run_dir) or {}).get("race"), self._by_number())
            if race is not None:
                sections.append(("race", "Final race", race))
            final = final_section(self.exp.run_dir, self.out, self._plot, kv)
            if final is not None:
                sections.append(("final", "Final model (test split)", final))
        if len(self.objective.names) >= 2:
            sections.append(("pareto", "Pareto front", self.pareto()))
        sections += [
            ("importance", "Parameter importance", self.importance()),
            ("architectures", "Top architectures", self.architectures()),
            ("failures", "Failures", self.failures()),
        ]
        nav = " · ".join(f'<a href="#{ident}">{title}</a>' for ident, title, _ in sections)
        body = "\n".join(
            f'<section id="{ident}">\n<h2>{title}</h2>\n{content}\n</section>'
            for ident, title, content in sections
        )
        title = f"nasforge report: {esc(self.exp.name)}"
        generated = f"written {esc(when(time.time()))} by nasforge {esc(__version__)}"
        return _TEMPLATE.substitute(title=title, generated=generated, nav=nav, body=body, css=_CSS, js=_JS)

    def _by_number(self) -> dict[int, Trial]:
        return {t.number: t for t in self.trials}

    # ------------------------------------------------------------------ sections
    def _config(self) -> dict[str, Any]:
        """The run's ``config.yaml`` (written by ``nasforge search``), or {}."""
        run_dir = self.exp.run_dir
        path = RunDir(run_dir).config if run_dir is not None else None
        if path is None or not path.is_file():
            return {}
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}

    def _strategy(self, config: dict[str, Any]) -> str:
        named = config.get("strategy")
        name = named.get("name") if isinstance(named, dict) else named
        saved = self.exp.storage.get_meta("strategy")
        kind = saved.get("type") if isinstance(saved, dict) else None
        if name and kind:
            return f"{esc(name)} ({esc(kind)})"
        if name or kind:
            return esc(name or kind)
        return "not recorded"

    def counts(self) -> Counter[str]:
        return Counter(t.status for t in self.trials)

    def summary(self) -> str:
        exp, objective = self.exp, self.objective
        config = self._config()
        counts = self.counts()
        order = ("COMPLETE", "PRUNED", "FAIL", "SCREENED", "INTERRUPTED", "RUNNING")
        state_text = ", ".join(f"{counts[s]} {s.lower()}" for s in order if counts[s])
        starts = [t.started for t in self.trials if t.started is not None]
        ends = [t.finished for t in self.trials if t.finished is not None]
        wall = (max(ends) - min(starts)) if starts and ends else None
        busy = sum(t.duration or 0.0 for t in self.trials)
        goals = "; ".join(
            f"{'maximise' if d == 'maximize' else 'minimise'} {esc(n)}"
            for n, d in zip(objective.names, objective.directions, strict=True)
        )
        constraints = ", ".join(esc(c) for c in objective.constraints) or "none"
        space = exp.space
        space_json = json.dumps(space.to_dict(), indent=1, default=str)
        space_text = (
            f"{esc(space.name)} ({len(space.dimensions())} dimensions)"
            f"<details><summary>description</summary><pre>{esc(space_json)}</pre></details>"
        )
        pairs: list[tuple[str, str]] = [("experiment", esc(exp.name))]
        if exp.run_dir is not None:
            pairs.append(("run directory", f"<code>{esc(exp.run_dir)}</code>"))
        data = config.get("data")
        dataset = data.get("name") if isinstance(data, dict) else data
        if dataset:
            pairs.append(("dataset", esc(dataset)))
        pairs += [
            ("search space", space_text),
            ("strategy", self._strategy(config)),
            ("objectives", goals),
            ("constraints", constraints),
            ("seed", esc(exp.seed)),
            ("trials", f"{len(self.trials)}" + (f": {state_text}" if state_text else "")),
            (
                "wall time",
                f"{seconds(wall)} from the first start to the last finish; {seconds(busy)} in trials"
                if wall is not None
                else "no trial has finished",
            ),
        ]
        best = exp.best()
        if best is not None:
            arch = f"<code>{esc(describe_arch(best.architecture))}</code>"
            pairs.append(("best trial", f"#{best.number} by {esc(self.primary)}: {arch}"))
        if isinstance(exp.storage, OptunaStorage):
            url = f"<code>{esc(exp.storage.url)}</code>"
            pairs.append(("database", f"{url} (open it with <code>optuna-dashboard</code>)"))
        columns = [f"<div>{kv(pairs)}</div>"]
        if best is not None:
            metrics = [(esc(k), esc(num(v))) for k, v in best.metrics.items()]
            columns.append(
                f"<div><h3>Metrics of the best trial (#{best.number})</h3>"
                + (kv(metrics) if metrics else note("no metrics recorded"))
                + "</div>"
            )
        parts = [f'<div class="columns">{"".join(columns)}</div>']
        if counts["RUNNING"]:
            parts.append(
                note(
                    f"{counts['RUNNING']} trial{' was' if counts['RUNNING'] == 1 else 's were'} running when "
                    "this report was written: the search may still be going; write the report again later."
                )
            )
        return "\n".join(parts)

    def _extra_metrics(self, trials: Sequence[Trial]) -> list[str]:
        names = set(self.objective.names)
        extra = (_DETECTION_METRICS if self.detection else ()) + _EXTRA_METRICS
        return [m for m in extra if m not in names and any(m in t.metrics for t in trials)][:4]

    def leaderboard(self) -> str:
        ranked = self.exp.leaderboard(self.top)
        if not ranked:
            return note("No trial has completed yet.")
        extra = self._extra_metrics(ranked)
        header = ["rank", "trial", *(esc(n) for n in self.objective.names), *(esc(m) for m in extra)]
        header += ["duration", "architecture"]
        rows = []
        for rank, t in enumerate(ranked, start=1):
            values = [num(v) for v in t.values or ()]
            flag = ' <span class="flag">infeasible</span>' if not t.feasible else ""
            rows.append(
                [
                    str(rank),
                    str(t.number),
                    *values,
                    *(esc(num(t.metrics.get(m))) for m in extra),
                    seconds(t.duration),
                    arch_cell(t) + flag,
                ]
            )
        done = sum(1 for t in self.trials if t.values is not None)
        caption = (
            f"The {len(ranked)} best of {done} completed trials by {esc(self.primary)}"
            + (" (the first objective)" if len(self.objective.names) > 1 else "")
            + "; infeasible trials (constraints violated) rank last."
        )
        return note(caption) + "\n" + table(header, rows, ident="leaderboard-table")

    def _plot(self, path: Path | None, alt: str) -> str:
        if path is None:
            return ""
        self.written.add(path.name)
        return img(path, alt)

    def trajectory(self) -> str:
        title = f"{self.exp.name}: {self.primary} per trial"
        path = plot_trajectory(self.trials, self.objective, self.out / TRAJECTORY_PNG, title)
        if path is None:
            return note("No trial has finished yet.")
        caption = (
            f"{esc(self.primary)} of each trial in the order trials finished; the line is the best "
            "feasible value so far."
        )
        states = {t.state for t in self.trials}
        if TrialState.PRUNED in states:
            caption += " Crosses: pruned trials, at the value they reached when stopped."
        if TrialState.FAIL in states:
            caption += " Triangles on the bottom edge: failed trials."
        return self._plot(path, f"search trajectory: {self.primary} per trial") + note(caption)

    def pareto(self) -> str:
        front = self.exp.pareto_front()
        if not front:
            return note("No feasible trial has completed yet, so there is no front.")
        write_pareto(self.exp, self.out)
        self.written |= {RunDir.PARETO_JSON, RunDir.PARETO_PNG}
        data = json.loads(RunDir(self.out).pareto_json.read_text())
        names = self.objective.names
        reference = ", ".join(f"{esc(n)} {num(v)}" for n, v in zip(names, data["reference"], strict=True))
        rows = [[str(t.number), *(num(v) for v in t.values or ()), arch_cell(t)] for t in front]
        caption = (
            f"{len(front)} non-dominated of {data['feasible_trials']} feasible completed trials. "
            f"Hypervolume {num(float(data['hypervolume']))} (reference point: {reference}, each objective's "
            "worst feasible value, so it compares runs only with a shared reference)."
        )
        return "\n".join(
            [
                self._plot(RunDir(self.out).pareto_png, "Pareto front"),
                note(caption),
                table(["trial", *(esc(n) for n in names), "architecture"], rows, ident="pareto-table"),
            ]
        )

    def importance(self) -> str:
        result = param_importance(self.trials, self.exp.space, self.objective)
        if result.note is not None:
            return note(esc(result.note) + ".")
        path = plot_importance(result, self.out / IMPORTANCE_PNG, self.primary)
        caption = (
            f"A random forest (200 trees) fitted on the parameters of {result.trials} completed trials "
            f"predicts {esc(self.primary)}; a parameter's share is the impurity decrease its splits give. "
            "A guide to what mattered in this run, not a causal test."
        )
        if result.constant:
            caption += f" {len(result.constant)} parameters took one value only and are left out."
        return self._plot(path, "parameter importance") + note(caption)

    def architectures(self) -> str:
        ranked = self.exp.leaderboard(N_DIAGRAMS)
        if not ranked:
            return note("No trial has completed yet.")
        parts = []
        for i, t in enumerate(ranked, start=1):
            values = ", ".join(
                f"{esc(n)} {num(v)}" for n, v in zip(self.objective.names, t.values or (), strict=True)
            )
            parts.append(f'<div class="arch"><h3>#{i}: trial {t.number} ({values})</h3>')
            parts.append(f"<p><code>{esc(describe_arch(t.architecture))}</code></p>")
            name = f"arch_{i}.png"
            path = draw_architecture(t.architecture, self.out / name)
            params = [(esc(k), esc(v)) for k, v in t.architecture.params.items()]
            if path is not None:
                parts.append(self._plot(path, f"diagram of trial {t.number}"))
                parts.append(f"<details><summary>parameters</summary>{kv(params)}</details>")
            else:
                parts.append(kv(params))
            parts.append("</div>")
        return "\n".join(parts)

    def failures(self) -> str:
        failed = [t for t in self.trials if t.state is TrialState.FAIL]
        pruned = sum(1 for t in self.trials if t.state is TrialState.PRUNED)
        parts = []
        if pruned:
            parts.append(
                note(
                    f"{pruned} trial{'s were' if pruned != 1 else ' was'} pruned (stopped early by the "
                    "scheduler or the time budget): not failures, and not counted below."
                )
            )
        if not failed:
            parts.append(note("No trial failed."))
            return "\n".join(parts)
        reasons = Counter(failure_reason(t) for t in failed)
        parts.append(
            table(["reason", "trials"], ([esc(r), str(n)] for r, n in reasons.most_common()), ident="reasons")
        )
        rows = [
            [str(t.number), esc(when(t.finished)), f"<code>{esc(error_line(t.error))}</code>"] for t in failed
        ]
        parts.append(f"<h3>Failed trials ({len(failed)})</h3>")
        parts.append(table(["trial", "finished", "error"], rows, ident="failed-table"))
        return "\n".join(parts)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2937;
       max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
nav { font-size: 0.9rem; margin: 0.6rem 0 1rem; }
a { color: #1d4ed8; text-decoration: none; }
.generated, .note { color: #4b5563; font-size: 0.88rem; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 0.4rem 0; }
th, td { padding: 3px 10px; text-align: left; vertical-align: top; }
table.data thead th { background: #f3f4f6; border-bottom: 1px solid #d1d5db; }
table.data tbody tr:nth-child(even) { background: #f9fafb; }
table.data td { border-bottom: 1px solid #f0f1f3; }
table.kv th { color: #4b5563; font-weight: 600; white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.82rem; word-break: break-word; }
pre { font-size: 0.78rem; background: #f9fafb; padding: 8px; overflow-x: auto; max-height: 320px; }
img.plot { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
.flag { color: #b45309; font-size: 0.78rem; }
details summary { cursor: pointer; color: #4b5563; font-size: 0.85rem; }
.columns { display: flex; flex-wrap: wrap; gap: 12px 48px; align-items: flex-start; }
.columns > div:first-child { flex: 1 1 520px; min-width: 0; }
.columns h3 { margin-top: 0.2rem; }
"""

# after loading, <body data-images-decoded="N"> counts the plots the browser decoded (for checks)
_JS = """
window.addEventListener("load", function () {
  var n = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0;
  }).length;
  document.body.setAttribute("data-images-decoded", String(n));
});
"""

_TEMPLATE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<h1>$title</h1>
<p class="generated">$generated</p>
<nav>$nav</nav>
$body
<script>$js</script>
</body>
</html>
""")
