"""The ``nasforge`` command line. Commands stay thin: they parse, call the library, and print."""

from __future__ import annotations

import json
import math
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nasforge._paths import check_writable_file, ensure_writable_dir, next_free_path
from nasforge.errors import ConfigError, NasforgeError

app = typer.Typer(
    name="nasforge",
    help="Neural Architecture Search: find, train and hand back a model for your data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs are reflowed to the terminal width
)
out = Console()
err = Console(stderr=True)
DEVICE_HELP = "Where to train: auto (CUDA if available, then MPS, then CPU), cpu, cuda, cuda:N, mps."


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2; no traceback."""
    try:
        yield
    except NasforgeError as exc:
        from rich.markup import escape

        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@contextmanager
def _work_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr for ``bench`` / ``rank``, fed by ``advance(done, total)``.

    It appears with the first finished unit, so bad input fails with no output but the error;
    Ctrl-C says nothing was written and exits with 130.
    """
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task(description, total=None)
    started: list[bool] = []

    def advance(done: int, total: int) -> None:
        if not started:
            progress.start()
            started.append(True)
        progress.update(task, completed=done, total=total)

    try:
        yield advance
    except KeyboardInterrupt:
        err.print("interrupted; nothing written")
        raise typer.Exit(130) from None
    finally:
        if started:
            progress.stop()


class _Reporter:
    """Progress of long work (trials, epochs): live bars on a terminal, plain lines otherwise.

    The library reports through callbacks (``run_search``'s ``callbacks`` and ``on_epoch``,
    ``train_final``'s ``on_epoch``, ``tune_training``'s ``on_trial``); this turns them into rich
    bars with an ETA on a terminal, and into throttled lines with an ETA in a log file, a pipe or
    CI (:class:`nasforge._progress.ProgressLines`: at most one line per ``interval`` seconds and a
    still-working line after a minute of silence, so a log is neither flooded nor left silent).
    """

    def __init__(self, console: Console, *, enabled: bool = True, interval: float = 15.0) -> None:
        from nasforge._progress import ProgressLines

        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[text]}"),
            console=console,
            disable=not self.live,
        )
        self._lines = ProgressLines(self._write, interval=interval)
        self._tasks: dict[str, TaskID] = {}
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None

    def _write(self, line: str) -> None:
        self.console.print(escape(line), highlight=False, soft_wrap=True)

    def __enter__(self) -> _Reporter:
        self._stop.clear()
        if self.live:
            self._bars.start()
        elif self.enabled:  # a trial or an epoch can take many minutes: say it is still running
            self._timer = threading.Thread(target=self._tick, name="nasforge-progress", daemon=True)
            self._timer.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(2.0):
            self._lines.tick()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        self._bars.stop()

    def stage(self, key: str, label: str, total: int | None, *, done: int = 0, unit: str = "") -> None:
        """A new stage of ``total`` units (None: unknown), ``done`` of them already done."""
        if self.live and key in self._tasks:  # started again: its time per unit starts now
            self._bars.reset(self._tasks[key], total=total, completed=done, description=label, text="")
        elif self.live:
            self._tasks[key] = self._bars.add_task(label, total=total, completed=done, text="")
        elif self.enabled:
            self._lines.stage(key, total=total, done=done, unit=unit, label=label)

    def update(self, key: str, done: int, text: str = "") -> None:
        if self.live:
            self._bars.update(self._tasks[key], completed=done, text=text)
        elif self.enabled:
            self._lines.update(key, done, text)

    def note(self, markup: str) -> None:
        """A line that stays (a failed trial), above the bars on a terminal."""
        self.console.print(markup, highlight=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _describe(exp: Any, trial: Any) -> str:
    describe = getattr(exp.space, "describe", None)
    return describe(trial.architecture) if callable(describe) else trial.architecture.key


def _leaderboard(exp: Any, top: int, width: int) -> Table:
    metrics = [
        *exp.objective.names,
        *(m for m in ("params", "train_seconds") if m not in exp.objective.names),
    ]
    columns = [
        ("rank", 1),  # the row order says it too: left out (after train_seconds) when narrow
        ("trial", 0),
        *((m, 2 if m == "train_seconds" else 0) for m in metrics),
        ("architecture", 0),
    ]
    rows = []
    for rank, t in enumerate(exp.leaderboard(top), start=1):
        flag = "" if t.feasible else " (infeasible)"
        values = [_fmt_metric(m, t.metrics.get(m, "")) for m in metrics]
        rows.append([str(rank), str(t.number), *values, _describe(exp, t) + flag])
    return _fitted_table(f"Top {top} of {len(exp.trials)} trials", columns, rows, width)


def _fmt_metric(name: str, value: Any) -> str:
    """A metric in a table: seconds to a tenth (four decimals of a second say nothing)."""
    if name.endswith("seconds") and isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:,.1f}"
    return _fmt(value)


def _fitted_table(
    title: str, columns: list[tuple[str, int]], rows: list[list[str]], width: int, *, left: int = 0
) -> Table:
    """A table whose last column, an architecture description, stays readable at ``width`` columns.

    Other columns keep their values on one line (a header may wrap at a space; ``_`` in metric
    names is shown as a space for that); the description gets the rest of the width and wraps at
    its spaces, never inside a layer's name. When that rest is too small for the longest layer
    name, columns with a drop rank (``columns[i][1] > 0``, highest first) are left out. NB-201
    strings, which have no spaces, wrap after each node's ``+``. The first ``left`` columns are
    text (left-justified), the others up to the description numbers.
    """
    from rich.cells import cell_len
    from rich.text import Text

    def longest_word(text: str) -> int:
        return max((cell_len(w) for w in text.split()), default=0)

    headers = [name.replace("_", " ") for name, _ in columns[:-1]] + [columns[-1][0]]
    last = len(columns) - 1
    natural = [
        max([longest_word(h)] + [cell_len(r[i]) for r in rows]) if i != last else 0
        for i, h in enumerate(headers)
    ]
    need = min(max([12] + [longest_word(_node_breaks(r[last])) for r in rows]), max(12, width // 2))
    keep = list(range(len(columns)))

    def room() -> int:  # what is left for the description: borders and padding take 3 per column
        return width - sum(natural[i] for i in keep) - 3 * len(keep) - 1

    for i in sorted((i for i in keep if columns[i][1] > 0), key=lambda i: -columns[i][1]):
        if room() >= need:
            break
        keep.remove(i)
    full = max([12] + [cell_len(r[last]) for r in rows])
    desc_width = max(12, min(room(), full))
    dropped = [headers[i] for i in range(len(columns)) if i not in keep]
    caption = f"not shown at this width: {', '.join(dropped)}" if dropped else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i in keep:
        if i == last:
            table.add_column(headers[i], width=desc_width, overflow="fold")
        else:
            table.add_column(headers[i], justify="left" if i < left else "right", width=natural[i])
    for r in rows:
        desc = r[last] if cell_len(r[last]) <= desc_width else _node_breaks(r[last]).replace("+ |", "+\n|")
        table.add_row(*(Text(r[i]) if i != last else Text(desc) for i in keep))
    return table


def _node_breaks(text: str) -> str:
    """An NB-201 string with a space after each node (``|+ |``), where it may wrap."""
    return text.replace("|+|", "|+ |") if " " not in text else text


@app.command()
def search(
    config: Annotated[
        Path | None, typer.Argument(help="YAML search config; omitted: the built-in default (digits).")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset name: digits, mnist, fashion-mnist.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Directory holding the dataset files (or set NASFORGE_DATA_DIR)."),
    ] = None,
    download: Annotated[
        bool | None,
        typer.Option("--download/--no-download", help="Download missing dataset files into --data-dir."),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            help="Search strategy: evolution, random, grid, local, guided_local, reinforce, bananas, tpe, "
            "optuna, successive_halving, hyperband, bohb, zc_warm_start, spos, darts, gdas (see "
            "`nasforge list`; strategy options go in the config file's strategy: mapping; darts and "
            "gdas need the nb201 space).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Early stopping of unpromising trials after each epoch: median, successive_halving, "
            "hyperband, learning_curve (default: none; the successive_halving, hyperband and bohb "
            "strategies bring their own).",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            "-n",
            min=1,
            help="Number of trials in total (ones a constraint screens out before training do not count).",
        ),
    ] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            "--time",
            "-t",
            metavar="DURATION",
            help="Time budget for the whole run, search and final training: 90s, 15m, 1h30m, 2h or "
            "seconds. The final training gets 25% until the first trial measures its cost, then "
            "its estimated cost; the search stops (cutting running trials) when its share is spent, "
            "and the final training stops at the end of the budget. Alone, trials are unlimited; "
            "with --trials, whichever ends first.",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.001,
            help="Stop starting trials after this many seconds (running ones finish; the final "
            "training comes after and is not counted: --time covers both).",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="Where trials run: inprocess (default; one at a time in this process), process (one "
            "process per trial: isolation, limits, several at once) or ray (a Ray cluster; "
            "pip install 'nasforge[ray]').",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-j",
            min=1,
            help="Trials running at once (process or ray executor; alone it picks process).",
        ),
    ] = None,
    trial_time_limit: Annotated[
        float | None,
        typer.Option(
            "--trial-time-limit",
            min=0.001,
            help="Seconds one trial may run before it is killed and recorded as failed (process or ray).",
        ),
    ] = None,
    trial_memory_limit: Annotated[
        float | None,
        typer.Option(
            "--trial-memory-limit",
            min=1,
            help="Megabytes of memory one trial's process may use before it is killed and recorded as "
            "failed (process executor).",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to join: auto (the cluster of `ray start --head` on this machine) or "
            "ray://host:10001 (default: start a local one). Implies --executor ray.",
        ),
    ] = None,
    cpus_per_trial: Annotated[
        float | None,
        typer.Option("--cpus-per-trial", min=0.01, help="CPUs Ray reserves per trial (0.5: two per CPU)."),
    ] = None,
    gpus_per_trial: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-trial",
            min=0,
            help="GPUs Ray reserves per trial (fractions allowed: 0.5 runs two per GPU); each trial "
            "trains on the GPU Ray assigned it.",
        ),
    ] = None,
    trials_per_gpu: Annotated[
        int | None,
        typer.Option(
            "--trials-per-gpu",
            min=1,
            help="Process executor: trials sharing one GPU; each trial process gets one visible GPU "
            "(CUDA_VISIBLE_DEVICES), the least busy. Implies --executor process.",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="Where trials, one-shot supernets and the final training run: auto (default: CUDA if "
            "available, then MPS, then CPU), cpu, cuda, cuda:N, mps.",
        ),
    ] = None,
    amp: Annotated[
        str | None,
        typer.Option(
            "--amp",
            help="Mixed precision: auto (default: bf16 on a CUDA GPU that supports it, else off), off, "
            "bf16, fp16 (GPU only).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Experiment seed.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs per trial.")] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="Validation metric that picks the best trial: accuracy (default), balanced_accuracy, "
            "auc or f1_macro (becomes the first objective, val_<metric>; with the train estimator). "
            "balanced_accuracy or auc suit imbalanced classes.",
        ),
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(
            "--fraction",
            min=0.0001,
            max=1.0,
            help="Share of the training images each trial trains on (a fixed stratified subset; the "
            "final training uses them all).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="Mini-batch size of the trials, and of the final training unless the config's final: "
            "section sets its own batch_size.",
        ),
    ] = None,
    class_names: Annotated[
        str | None,
        typer.Option(
            "--class-names",
            metavar="A,B,C|FILE",
            help="Names of the classes, in label order: comma-separated, or a text file with one per "
            "line (for data that carries none, e.g. an .npz without class_names).",
        ),
    ] = None,
    final_epochs: Annotated[
        int | None,
        typer.Option("--final-epochs", min=0, help="Epochs of the final training of the best (0: skip)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Run name (default: <dataset>-<strategy>).")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Run directory (default: runs/<name>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the newest run of this name after a crash or stop.")
    ] = False,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Database URL shared by several workers (postgresql://user@host/db, sqlite:///shared.db): "
            "run the same command on each machine and they search one experiment together; the "
            "last to finish trains the best once (default: nasforge.db in the run directory).",
        ),
    ] = None,
    track: Annotated[
        list[str] | None,
        typer.Option(
            "--track",
            metavar="NAME",
            help="Follow the search in tensorboard (event files in RUN/tensorboard; pip install "
            "'nasforge[tensorboard]') or mlflow (a parent run, one child run per trial; pip install "
            "'nasforge[mlflow]'). Repeat it for both. Replaces the config's track: list.",
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI, e.g. http://host:5000 (default: sqlite:///RUN/mlflow.db, no "
            "server needed). Implies --track mlflow.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars (terminal) or progress lines (log).")
    ] = False,
) -> None:
    """Search architectures, train the best one, and write everything to a run directory.

    Without arguments it searches a chain CNN on scikit-learn's digits (no download needed).
    """
    with _user_errors():
        from nasforge.config import SECTION_DEFAULTS, fill_defaults, load_raw, parse_config
        from nasforge.experiment._search import run_search

        data = load_raw(config)
        yaml_final = data.get("final")
        final_batch_set = isinstance(yaml_final, dict) and "batch_size" in yaml_final
        section = data.get("data")
        data["data"] = dict(section) if isinstance(section, dict) else ({"name": section} if section else {})
        if dataset is not None:
            data["data"]["name"] = dataset
        if data_dir is not None:
            data["data"]["root"] = str(data_dir)
        if download is not None:
            data["data"]["download"] = download
        data["data"].setdefault("name", "digits")
        fill_defaults(data)  # budgets follow the (possibly overridden) dataset
        for key, given in (("strategy", strategy), ("scheduler", scheduler)):
            current = data.get(key)
            if given is None or given == (current.get("name") if isinstance(current, dict) else current):
                continue
            if isinstance(current, dict) and "name" not in current:  # the options go to the one named
                default = SECTION_DEFAULTS.get(key)
                if default is None or default()["name"] != given:  # (else parse_config adds its defaults)
                    data[key] = {**current, "name": given}
            else:
                data[key] = {"name": given}
        if time_budget is not None:
            data["time"] = _duration(time_budget)
        if metric is not None:
            data["objectives"] = _with_metric(data.get("objectives"), metric)
        for key, value in (
            ("trials", trials),
            ("timeout", timeout),
            ("seed", seed),
            ("name", name),
            ("device", device),
            ("amp", amp),
        ):
            if value is not None:
                data[key] = value
        if class_names is not None:
            data["data"]["class_names"] = _class_names(class_names)
        if run_dir is not None:
            data["run_dir"] = str(run_dir)
        if storage is not None:
            data["storage"] = storage
        _executor_options(
            data,
            executor,
            concurrency,
            trial_time_limit,
            trial_memory_limit,
            address,
            cpus_per_trial,
            gpus_per_trial,
            trials_per_gpu,
        )
        _track_options(data, track, tracking_uri)
        _merge_knobs(data, "estimator", epochs=epochs, fraction=fraction, batch_size=batch_size)
        # a config's own final: batch_size is the more specific setting, and stays
        _merge_knobs(data, "final", epochs=final_epochs, batch_size=None if final_batch_set else batch_size)
        cfg = parse_config(data, source=str(config) if config else "options")
        if metric not in (None, "accuracy") and cfg.estimator.get("name") != "train":
            raise ConfigError(
                f"--metric {metric} needs the train estimator (it measures val_{metric}); "
                f"estimator {cfg.estimator.get('name')!r} reports validation accuracy only"
            )

        primary = cfg.objectives[0].lstrip("-+")
        progress = _Reporter(out, enabled=not quiet)
        started: dict[str, Any] = {}

        def on_start(exp: Any, path: Path, resumed: bool) -> None:
            done = exp.finished_count()
            verb = f"resuming {path} ({done} trials done)" if resumed else f"run directory {path}"
            out.print(
                f"[bold]nasforge search[/]: {cfg.data.name}, space {exp.space.name}, "
                f"strategy {cfg.strategy['name']}"
                + (f", executor {cfg.executor['name']}" if cfg.executor else "")
                + f"; {verb}",
                highlight=False,
            )
            progress.stage("trials", "trials", cfg.trials, done=done, unit="trial")
            started["exp"] = exp
            pending = getattr(exp.strategy, "pending_epochs", None)
            if pending:  # a one-shot strategy trains its supernet before the first trial
                progress.stage("supernet", "supernet epochs", pending, unit="epoch")

        def on_trial(exp: Any, trial: Any) -> None:
            if trial.screened:  # counted on the bar, not a line each: there can be hundreds
                started["screened"] = started.get("screened", 0) + 1
            elif trial.state.value == "FAIL":
                last = (trial.error or "").strip().splitlines()[-1:] or ["?"]
                progress.note(f"[yellow]trial {trial.number} failed:[/] {escape(last[0])}")
            best = _best_text(exp, primary)
            if started.get("screened"):
                best = f"{best}{', ' if best else ''}{started['screened']} screened out by constraints"
            progress.update("trials", exp.finished_count(), best)

        def on_final(exp: Any, epochs: int) -> None:
            progress.note(f"training the best architecture for {epochs} epochs ...")
            progress.stage("final", "final training epochs", epochs, unit="epoch")

        def on_plan(line: str) -> None:
            progress.note(escape(line))

        def on_epoch(stage: str, epoch: int, epochs: int, record: Mapping[str, Any]) -> None:
            if stage == "final":
                progress.update("final", epoch, _epoch_text(record))
                return
            text = f"train acc {record['train_accuracy']:.3f}" if "train_accuracy" in record else ""
            if "entropy" in record:
                text += f", alpha entropy {record['entropy']:.3f}"
            progress.update("supernet", epoch, text)
            if epoch == epochs:  # the trials' time per trial and ETA start now
                done = started["exp"].finished_count()
                progress.stage("trials", "trials", cfg.trials, done=done, unit="trial")

        terminated: list[int] = []
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt(terminated))
        try:
            with progress:
                result = run_search(
                    cfg,
                    resume=resume,
                    callbacks=(on_trial,),
                    on_start=on_start,
                    on_final_start=on_final,
                    on_epoch=on_epoch,
                    on_plan=on_plan,
                )
        except KeyboardInterrupt:
            how = "stopped by SIGTERM" if terminated else "interrupted"
            err.print(f"{how}; continue with the same command and --resume")
            raise typer.Exit(143 if terminated else 130) from None  # 128 + the signal, as shells do
        finally:
            signal.signal(signal.SIGTERM, previous)
        exp = result.experiment
        out.print(_leaderboard(exp, 5, out.width))
        best = result.best
        if best is None:
            out.print("[red]no trial completed[/]; see the failures above and in leaderboard.csv")
            raise typer.Exit(1)
        if result.final is not None:
            m = result.final.metrics
            cut = " (cut by the time budget)" if m.get("cut_by_time_limit") else ""
            out.print(
                f"[bold green]best architecture[/] (trial {best.number}"
                + (", cut by the time budget" if best.state.value == "PRUNED" else "")
                + f"): {_describe(exp, best)}\n"
                f"final training: {m['epochs']} epochs{cut}, val accuracy {m['val_accuracy']:.4f}, "
                f"[bold]test accuracy {m['test_accuracy']:.4f}[/], {m['params']:,} parameters",
                highlight=False,
            )
            _print_test_report(result.final.test_report)
        elif result.final_note is not None:  # a worker of a shared database: another one trains it
            out.print(result.final_note, highlight=False)
        if result.time_budget is not None:
            from nasforge._progress import format_duration

            tb = result.time_budget
            search_s = tb["search_s"] or 0.0
            out.print(
                f"time budget {format_duration(tb['total_s'])}: spent {format_duration(tb['spent_s'])} "
                f"({format_duration(search_s)} search, {len(exp.trials)} trials; "
                f"{format_duration(tb['spent_s'] - search_s)} final training and files)",
                highlight=False,
            )
        out.print(
            f"results in {result.run_dir}/ (config.yaml, leaderboard.csv, best_architecture.json"
            + (", final.json, model.nasforge)" if result.final is not None else ")"),
            highlight=False,
        )


def _print_test_report(report: Any) -> None:
    """The final model's test metrics beyond accuracy (runs written before they existed have none)."""
    if report:
        from nasforge.estimate._metrics import summary_lines

        for line in summary_lines(report):
            out.print(line, highlight=False, markup=False)


def _with_metric(objectives: Any, metric: str) -> list[Any]:
    """``--metric``: the config's objectives with ``val_<metric>`` in first place."""
    from nasforge.estimate._metrics import SELECTION_METRICS

    if metric not in SELECTION_METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(SELECTION_METRICS)}, got {metric!r}")
    rest = objectives if isinstance(objectives, list) else [objectives] if objectives else []
    return [f"val_{metric}", *[o for o in rest[1:] if o != f"val_{metric}"]]


def _merge_knobs(data: dict[str, Any], section: str, **knobs: Any) -> None:
    """Options given on the command line into a config section (``estimator: zero_cost`` is a
    name alone); a section of another shape is left for the config's validation to report."""
    given = {k: v for k, v in knobs.items() if v is not None}
    current = data.get(section)
    if not given or not isinstance(current, (str, dict)):
        return
    data[section] = {**({"name": current} if isinstance(current, str) else current), **given}


def _duration(text: str) -> float:
    """``--time``'s value in seconds, or a one-line error."""
    from nasforge._budget import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--time: {exc}") from None


def _class_names(value: str) -> list[str]:
    """``--class-names``: ``a,b,c``, or a text file with one name per line."""
    path = Path(value)
    if path.is_file():
        try:
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--class-names: cannot read {path} as text: {exc}") from None
    else:
        names = [n.strip() for n in value.split(",")]
    if not any(names):
        raise ConfigError(f"--class-names: no names in {value!r}; give a,b,c or a file with one per line")
    return names


def _terminate_as_interrupt(seen: list[int]) -> Callable[[int, Any], None]:
    """A SIGTERM handler (``kill``, a cluster scheduler's stop) that stops a search as Ctrl-C does,
    cleanly, and appends the signal to ``seen`` so the command can say which stop it was."""

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    return handler


def _executor_options(
    data: dict[str, Any],
    name: str | None,
    concurrency: int | None,
    time_limit: float | None,
    memory_limit: float | None,
    address: str | None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
    trials_per_gpu: int | None = None,
) -> None:
    """Merge the executor options of ``nasforge search`` into the config's ``executor`` mapping."""
    current = data.get("executor")
    section = dict(current) if isinstance(current, dict) else ({"name": current} if current else {})
    ray_only = (address, cpus_per_trial, gpus_per_trial) != (None,) * 3
    out_of_process = (concurrency, time_limit, memory_limit, trials_per_gpu) != (None,) * 4
    if name is None and not section and (ray_only or out_of_process):
        name = "ray" if ray_only else "process"  # options that only make sense out of process
    if name is not None and name != section.get("name"):
        section = {"name": name}
    for key, value in (
        ("concurrency", concurrency),
        ("time_limit", time_limit),
        ("memory_limit_mb", memory_limit),
        ("address", address),
        ("cpus_per_trial", cpus_per_trial),
        ("gpus_per_trial", gpus_per_trial),
        ("trials_per_gpu", trials_per_gpu),
    ):
        if value is not None:
            section[key] = value
    if section:
        data["executor"] = section


def _track_options(data: dict[str, Any], names: list[str] | None, tracking_uri: str | None) -> None:
    """Merge ``--track`` / ``--tracking-uri`` into the config's ``track`` list.

    ``--track`` replaces the list, keeping the config's options of a tracker it names again;
    ``--tracking-uri`` goes to the mlflow tracker, adding one if there is none.
    """
    if not names and tracking_uri is None:
        return
    current = data.get("track")
    entries: list[Any] = current if isinstance(current, list) else ([current] if current else [])

    def name_of(entry: Any) -> Any:
        return entry.get("name") if isinstance(entry, dict) else entry

    if names:
        wanted = dict.fromkeys(n.strip() for item in names for n in item.split(",") if n.strip())
        given = {name_of(e): e for e in reversed(entries)}
        entries = [given.get(n, n) for n in wanted]
    if tracking_uri is not None:
        if "mlflow" not in [name_of(e) for e in entries]:
            entries = [*entries, "mlflow"]
        entries = [
            {**(e if isinstance(e, dict) else {"name": e}), "tracking_uri": tracking_uri}
            if name_of(e) == "mlflow"
            else e
            for e in entries
        ]
    data["track"] = entries


def _epoch_text(record: Mapping[str, Any]) -> str:
    """An epoch of a training, as the end of a progress line."""
    text = f"train loss {record['train_loss']:.4f}"
    val = record.get("val_accuracy", math.nan)
    return text + (f", val accuracy {val:.4f}" if math.isfinite(val) else "")


def _best_text(exp: Any, primary: str) -> str:
    best = exp.best()
    return f"best {primary} {best.metrics[primary]:.4f}" if best is not None else ""


@app.command()
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
    with _user_errors():
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
        out.print(_leaderboard(exp, top, out.width))
        best = exp.best()
        if best is not None:
            out.print(f"best: trial {best.number}, {_describe(exp, best)}", highlight=False)
        if final is not None:
            m = final["final_metrics"]
            out.print(
                f"final training: test accuracy {m['test_accuracy']:.4f}, val accuracy "
                f"{m['val_accuracy']:.4f}, {m['params']:,} parameters",
                highlight=False,
            )
            _print_test_report(final.get("test_report"))
        if failures:
            for t in exp.trials:
                if t.state.value == "FAIL":
                    last = (t.error or "").strip().splitlines()[-1:] or ["?"]
                    out.print(f"trial {t.number}: {last[0]}", highlight=False)


@app.command()
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
    with _user_errors():
        from nasforge.report import write_report

        path = write_report(run, out_dir, top=top)
        out.print(str(path), highlight=False, soft_wrap=True)


@app.command()
def train(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory, an architecture JSON (best_architecture.json), a .nasforge model "
            "or a zoo model name (its architecture is trained from scratch)."
        ),
    ] = None,
    from_model: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Fine-tune this .nasforge model or zoo model (its weights) on --dataset instead.",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset (default: the run's, or the model's).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download missing dataset files (mnist, fashion-mnist).")
    ] = False,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Training epochs (the most, with --tune).")
    ] = 30,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")] = 3e-3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 5e-4,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam, adamw or sgd.")] = "adam",
    augment: Annotated[
        str, typer.Option("--augment", help="none, shift, or shift+flip (natural images only).")
    ] = "none",
    patience: Annotated[
        int | None,
        typer.Option(
            "--patience", min=1, help="Early stopping: epochs without a better validation accuracy."
        ),
    ] = None,
    tune: Annotated[
        int,
        typer.Option(
            "--tune",
            min=0,
            help="Tune lr, weight decay, batch size and epochs with this many Optuna TPE trials first "
            "(on validation accuracy; hyperparameters, not the architecture).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    class_names: Annotated[
        str | None,
        typer.Option(
            "--class-names",
            metavar="A,B,C|FILE",
            help="Names of the classes, in label order: comma-separated, or a text file with one per "
            "line (default: the data's, or the run's class_names).",
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output .nasforge file, replaced if it exists (default: RUN/trained.nasforge, "
            "ARCH-trained.nasforge or MODEL-DATASET.nasforge; an existing one is kept and the new "
            "model gets the next free name, trained-2.nasforge, ...).",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    amp: Annotated[
        str,
        typer.Option(
            "--amp", help="Mixed precision: auto (bf16 on a GPU that has it, else off), off, bf16, fp16."
        ),
    ] = "auto",
) -> None:
    """Train one architecture with the full budget and save it as a .nasforge model.

    Give a run directory (its best architecture and dataset), an architecture JSON, or a model;
    with --from, the model's weights are the starting point (transfer learning: new classes or
    input channels get fresh layers, every matching layer keeps its weights).
    """
    with _user_errors():
        from nasforge import datasets
        from nasforge._device import check_device_and_amp
        from nasforge.deploy import load
        from nasforge.deploy._train import architecture_from, tune_training
        from nasforge.estimate import train_final

        check_device_and_amp(device, amp)  # before any data is loaded
        if (source is None) == (from_model is None):
            raise ConfigError("give what to train: a run directory / architecture / model, or --from MODEL")
        init = None
        if from_model is not None:
            base = load(from_model)
            arch, hint = base.architecture, {"name": base.provenance.get("dataset")}
            init = base.module
        else:
            assert source is not None
            arch, hint = architecture_from(source)
        name = dataset or hint.get("name")
        if not name:
            raise ConfigError("which dataset? give --dataset NAME (and --data-dir DIR for files)")
        if out_path is not None:
            check_writable_file(out_path, what="model file", hint="give another --out")
        else:  # checked now, not after the training
            ensure_writable_dir(
                _train_out_dir(source, from_model), what="directory for the model", hint="give --out PATH"
            )
        root = data_dir if data_dir is not None else (hint.get("root") if dataset is None else None)
        options = dict(hint.get("options") or {}) if dataset is None else {}
        task = datasets.load(str(name), root, seed=seed, download=download, **options)
        names = _class_names(class_names) if class_names is not None else None
        if names is None and dataset is None:
            names = hint.get("class_names")  # a run's data: class_names
        if names is not None:
            task = task.with_class_names(names)
        kept = ""
        if out_path is None:
            if from_model is not None:
                wanted = _train_out_dir(source, from_model) / f"{from_model.stem}-{task.name}.nasforge"
            elif source is not None and source.is_dir():
                wanted = source / "trained.nasforge"
            else:
                assert source is not None
                wanted = source.with_name(f"{source.stem}-trained.nasforge")
            out_path = next_free_path(wanted)  # an earlier model is never replaced
            kept = f" ({wanted.name} exists and was kept)" if out_path != wanted else ""
        settings: dict[str, Any] = {
            "lr": lr,
            "weight_decay": weight_decay,
            "batch_size": batch_size,
            "epochs": epochs,
        }
        progress = _Reporter(out)

        def on_tuned(done: int, total: int, row: dict[str, Any]) -> None:
            acc = row.get("val_accuracy", math.nan)
            progress.update("tune", done, f"val accuracy {acc:.4f}" if math.isfinite(acc) else "failed")

        def on_epoch(epoch: int, total: int, record: Mapping[str, Any]) -> None:
            progress.update("train", epoch, _epoch_text(record))

        if tune:
            out.print(
                f"tuning training hyperparameters: {tune} TPE trials of up to {epochs} epochs",
                highlight=False,
            )
            with progress:
                progress.stage("tune", "tuning trials", tune, unit="trial")
                tuned = tune_training(
                    arch,
                    task,
                    n_trials=tune,
                    max_epochs=epochs,
                    seed=seed,
                    init=init,
                    augment=augment,
                    on_trial=on_tuned,
                    device=device,
                    amp=amp,
                )
            settings.update(tuned.best)
            out.print(
                "best: "
                + ", ".join(f"{k}={_fmt(v)}" for k, v in tuned.best.items())
                + f" (validation accuracy {tuned.best_val_accuracy:.4f})",
                highlight=False,
            )
        with progress:
            progress.stage("train", "training epochs", int(settings["epochs"]), unit="epoch")
            trained = train_final(
                arch,
                task,
                epochs=int(settings["epochs"]),
                lr=float(settings["lr"]),
                batch_size=int(settings["batch_size"]),
                weight_decay=float(settings["weight_decay"]),
                optimizer=optimizer,
                augment=augment,
                patience=patience,
                seed=seed,
                init=init,
                on_epoch=on_epoch,
                device=device,
                amp=amp,
            )
        provenance = {
            "source": "nasforge train",
            "seed": seed,
            "settings": {**settings, "optimizer": optimizer},
        }
        if from_model is not None:
            provenance["fine_tuned_from"] = str(from_model)
        trained.save(out_path, provenance=provenance)
        m = trained.metrics
        moved = f", {m['transferred']} weight tensors from {from_model}" if from_model is not None else ""
        out.print(
            f"trained {m['epochs']} epochs on {task.name}{moved}: "
            f"validation accuracy {m['val_accuracy']:.4f}, test accuracy {m['test_accuracy']:.4f}, "
            f"{m['params']:,} parameters -> {out_path}{kept}",
            highlight=False,
            soft_wrap=True,
        )
        _print_test_report(trained.test_report)


def _train_out_dir(source: Path | None, from_model: Path | None) -> Path:
    """Where ``nasforge train`` writes its model without --out: the run directory or beside the input."""
    if from_model is not None:
        return from_model.parent
    assert source is not None
    return source if source.is_dir() else source.parent


@app.command()
def predict(
    model: Annotated[
        Path,
        typer.Argument(
            help="A .nasforge model file (a search writes <run_dir>/model.nasforge) or a zoo model "
            "name (nasforge zoo lists them)."
        ),
    ],
    images: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...) or folders of them.")],
    top: Annotated[int, typer.Option("--top", min=1, help="Classes shown per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the predictions as JSON.")] = False,
    device: Annotated[
        str, typer.Option("--device", help="Where the model runs: cpu (default), auto, cuda, cuda:N, mps.")
    ] = "cpu",
) -> None:
    """Classify images with a saved model: each image's most probable classes.

    Images are converted to the model's channels, resized to its input size and normalised as its
    training data was. An image far from that size (a 1-pixel side, smaller than the input, or
    more than 2x larger on a side) gets a warning: the prediction may be meaningless.
    """
    with _user_errors():
        from nasforge.deploy import load
        from nasforge.deploy._model import describe_sources
        from nasforge.errors import DataError

        loaded = load(model, device=device)
        files = describe_sources([str(p) for p in images])
        if not files:
            raise DataError(f"no image files (PNG, JPEG, ...) in {', '.join(map(str, images))}")
        if getattr(loaded, "task", "classification") != "classification":  # boxes: not wired here yet
            raise ConfigError(
                f"{model} is a detector; `nasforge predict` classifies. From Python, "
                f"nasforge.load({str(model)!r})(images)[0].boxes gives its boxes"
            )
        preds = loaded(files)
        if as_json:
            payload = {"model": str(model), "predictions": [p.to_dict(top) for p in preds]}
            out.print_json(json.dumps(payload))
            return
        table = Table(title=f"{model.name}: {len(loaded.class_names)} classes, input {loaded.input_shape}")
        table.add_column("image", overflow="fold")
        table.add_column("class")
        table.add_column("prob", justify="right")
        if top > 1:
            table.add_column("next")
        for p in preds:
            ranked = p.top(top)
            row = [escape(p.source), escape(ranked[0][0]), f"{ranked[0][1]:.1%}"]
            if top > 1:
                row.append(escape(", ".join(f"{n} {q:.1%}" for n, q in ranked[1:])))
            table.add_row(*row)
        out.print(table)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="A .nasforge model file or a zoo model name.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="onnx (fp32, dynamic batch), int8 (static QDQ ONNX), torchscript."
        ),
    ] = "onnx",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Output file (default: next to the model, .onnx / .int8.onnx / .pt)."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Dataset for INT8 calibration (training images) and the accuracy check (test images); "
            "default for int8: the one the model was trained on.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool,
        typer.Option("--download", help="Download missing files of --dataset (mnist, fashion-mnist)."),
    ] = False,
    calibration: Annotated[
        int, typer.Option("--calibration", min=1, help="Calibration images (int8).")
    ] = 512,
) -> None:
    """Export a model for deployment (ONNX, INT8 ONNX, TorchScript), checked against PyTorch.

    The check reports the largest logit difference and the top-1 agreement, and with a dataset
    the accuracy of both models. The exported graph takes raw pixels (N, C, H, W) in [0, 1]; the
    normalisation is inside it.
    """
    with _user_errors():
        from nasforge.deploy import FORMATS, load
        from nasforge.deploy import export as do_export

        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        loaded = load(model)
        suffix = {"onnx": ".onnx", "int8": ".int8.onnx", "torchscript": ".pt"}[fmt]
        target = out_path or model.with_name(model.name.removesuffix(model.suffix) + suffix)
        check_writable_file(target, what="export file", hint="give another --out")
        options: dict[str, Any] = {}
        name = dataset or (loaded.provenance.get("dataset") if fmt == "int8" else None)
        if name:
            from nasforge import datasets
            from nasforge.deploy import check_images
            from nasforge.registry import DATASETS

            if dataset is None and str(name) not in DATASETS:
                raise ConfigError(
                    f"INT8 export calibrates on the model's training data, but it was trained on "
                    f"{name!r}, which is not a dataset name (an image folder or .npz file?); give "
                    "--dataset folder|npz --data-dir PATH"
                )
            task = datasets.load(str(name), data_dir, download=download)
            options.update(check_images(task, calibration))
        report = do_export(loaded, target, format=fmt, **options)
        out.print(str(report), highlight=False, soft_wrap=True)


@app.command()
def profile(
    model: Annotated[Path, typer.Argument(help="A .nasforge model file or a zoo model name.")],
    batch: Annotated[
        list[int] | None, typer.Option("--batch", min=1, help="Batch size(s) to time (repeatable).")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Intra-op threads, fixed.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", min=2, help="Timed calls per measurement.")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed calls first.")] = 10,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also time the INT8 ONNX model (calibrated on --dataset).")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Calibration data for --int8 (default: the model's dataset)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download missing files of --dataset (mnist, fashion-mnist).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="Also time PyTorch eager on this GPU (cuda, cuda:N, mps; auto: a GPU if there is "
            "one), labelled torch_cuda (synchronised timing); cpu (default): CPU only.",
        ),
    ] = "cpu",
) -> None:
    """Measure a model on this machine: parameters, FLOPs, peak activation memory and latency.

    Latency is timed for PyTorch eager and ONNX Runtime fp32 (and INT8 with --int8), at each
    --batch, with --threads threads: --warmup untimed calls, then --repeats timed calls; the median
    is the figure, p10 / p90 and the coefficient of variation show the spread.
    """
    with _user_errors():
        import tempfile

        from nasforge._device import device_info, resolve_device
        from nasforge.deploy import check_images, load
        from nasforge.hardware import count_flops, count_params, measure_latency, peak_activation_bytes
        from nasforge.registry import DATASETS

        where = resolve_device(device)  # before the model is read
        loaded = load(model)
        shape = loaded.input_shape
        net = loaded.module
        result: dict[str, Any] = {
            "model": str(model),
            "input_shape": list(shape),
            "params": count_params(net),
            "flops": count_flops(net, shape),
            "peak_activation_bytes": peak_activation_bytes(net, shape),
            "threads": threads,
            "latency": [],
        }
        gpu_net = None
        if where.type != "cpu":
            import copy

            gpu_net = copy.deepcopy(net).to(where)
            result["gpu"] = device_info(where)
        with tempfile.TemporaryDirectory() as tmp:
            exported = {"onnx_fp32": Path(tmp) / "m.onnx"}
            loaded.export(exported["onnx_fp32"], format="onnx")
            if int8:
                name = dataset or str(loaded.provenance.get("dataset", ""))
                if dataset is None and name not in DATASETS:
                    raise ConfigError(
                        f"--int8 calibrates on the model's training data, but {name!r} is not a dataset "
                        "name; give --dataset NAME --data-dir PATH"
                    )
                from nasforge import datasets

                exported["onnx_int8"] = Path(tmp) / "m.int8.onnx"
                calib = check_images(datasets.load(name, data_dir, download=download), 256)
                loaded.export(exported["onnx_int8"], format="int8", calibration=calib["calibration"])
            for b in batch or [1]:
                runs: list[tuple[str, Any]] = [("torch_eager", net), *exported.items()]
                if gpu_net is not None:  # timed on the GPU, synchronised; its own row, never "the" latency
                    runs.append((f"torch_eager_{where.type}", gpu_net))
                for label, target in runs:
                    rep = measure_latency(
                        target, shape, batch_size=b, threads=threads, warmup=warmup, repeats=repeats
                    )
                    result["latency"].append({"runtime": label, **rep.to_dict()})
        if as_json:
            out.print_json(json.dumps(result))
            return
        out.print(
            f"{model}: {result['params']:,} parameters, {result['flops'] / 1e6:.2f} MFLOPs, peak activations "
            f"{result['peak_activation_bytes'] / 1024:.1f} KB (batch 1, float32); {threads} thread(s)",
            highlight=False,
        )
        table = Table(title=f"latency, ms per call ({repeats} timed runs after {warmup} warm-up)")
        for col in ("runtime", "batch", "median", "p10", "p90", "CV"):
            table.add_column(col, justify="left" if col == "runtime" else "right")
        for r in result["latency"]:
            table.add_row(
                r["runtime"],
                str(r["batch_size"]),
                f"{r['median_ms']:.3f}",
                f"{r['p10_ms']:.3f}",
                f"{r['p90_ms']:.3f}",
                f"{r['cv']:.1%}",
            )
        out.print(table)
        if "gpu" in result:
            gpu = result["gpu"]
            out.print(
                f"torch_eager_{where.type} ran on {gpu['device']} ({gpu['device_name']}), synchronised "
                "after every call: a GPU latency, not comparable with the CPU rows",
                highlight=False,
            )


@app.command()
def zoo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
) -> None:
    """List the pre-searched models shipped with nasforge; load one by name.

    Each was found by a nasforge search and trained by nasforge (benchmarks/build_zoo.py rebuilds
    them). Use a name wherever a model file goes: `nasforge predict fashion-mnist-s shoe.png`,
    `nasforge train --from fashion-mnist-s --dataset mnist`, or `nasforge.load("fashion-mnist-s")`.
    """
    with _user_errors():
        from nasforge import zoo as zoo_module
        from nasforge.deploy import load

        rows = []
        for entry in zoo_module.entries():
            model = load(entry.path)
            c, h, w = model.input_shape
            rows.append(
                {
                    "name": entry.name,
                    "description": entry.description,
                    "dataset": entry.dataset,
                    "input": f"{c}x{h}x{w}",
                    "classes": len(model.class_names),
                    "params": model.metrics.get("params"),
                    "size_kb": round(entry.path.stat().st_size / 1024, 1),
                    "test_accuracy": model.metrics.get("test_accuracy"),
                    "architecture": _describe_arch(model.architecture),
                }
            )
        if as_json:
            out.print_json(json.dumps(rows))
            return
        if not rows:
            out.print("no zoo models are installed")
            return
        columns = [
            ("name", 0),
            ("dataset", 3),  # the name says it, and --json has it: left out first when narrow
            ("input", 1),
            ("classes", 2),
            ("params", 0),
            ("size", 0),
            ("test acc", 0),
            ("architecture", 0),
        ]
        cells = []
        for r in rows:
            acc = r["test_accuracy"]
            cells.append(
                [
                    str(r["name"]),
                    str(r["dataset"]),
                    str(r["input"]),
                    str(r["classes"]),
                    f"{r['params']:,}" if isinstance(r["params"], int) else "?",
                    f"{r['size_kb']:.0f} KB",
                    f"{acc:.2%}" if isinstance(acc, float) else "?",
                    str(r["architecture"]),
                ]
            )
        table = _fitted_table(
            "nasforge model zoo (load by name: nasforge.load('NAME'))", columns, cells, out.width, left=3
        )
        out.print(table)


def _describe_arch(arch: Any) -> str:
    describe = getattr(arch.space, "describe", None)
    return str(describe(arch)) if callable(describe) else str(arch.key)


@app.command("list")
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


@app.command()
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
    with _user_errors():
        from nasforge.bench import run_benchmark
        from nasforge.bench._harness import format_mean_std

        names = [s.strip() for s in strategies.split(",") if s.strip()]
        ensure_writable_dir(
            out_dir if out_dir is not None else Path("bench-results") / benchmark,
            what="output directory",
            hint="give another --out DIR",
        )
        with _work_progress(f"{benchmark} runs") as advance:
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


@app.command()
def rank(
    benchmark: Annotated[
        str, typer.Option("--benchmark", "-b", help="Ground truth: nb201, nb301 or nb_macro.")
    ] = "nb201",
    estimator: Annotated[
        str,
        typer.Option(
            "--estimator",
            "-e",
            help="Registered estimator scoring each architecture (zero_cost, nb201, nb301, ...).",
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
    with _user_errors():
        from nasforge.bench import rank_estimator

        ensure_writable_dir(
            out_dir if out_dir is not None else Path("bench-results") / f"rank-{benchmark}",
            what="output directory",
            hint="give another --out DIR",
        )
        with _work_progress("architectures") as advance:
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


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from nasforge import __version__

        out.print(__version__)
        raise typer.Exit()


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Data notices (images resized, ...), images far from the model's input size and tracker
    failures as one readable line; others as usual."""
    from nasforge.data._own import DataNotice
    from nasforge.deploy import ImageSizeWarning
    from nasforge.track import TrackingWarning

    if issubclass(category, DataNotice):
        err.print(f"[yellow]notice:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    elif issubclass(category, TrackingWarning | ImageSizeWarning):
        err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    app(prog_name="nasforge")


if __name__ == "__main__":
    main()
