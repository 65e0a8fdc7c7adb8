"""``nasforge search``: options in, :func:`~nasforge.experiment._search.run_search`, progress and
results out."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from nasforge.cli._app import err, names_help, out, recipe_help, user_errors
from nasforge.cli._progress import Reporter
from nasforge.cli._tables import (
    best_text,
    describe_arch,
    epoch_text,
    final_scores,
    leaderboard_table,
    print_test_report,
    race_table,
)
from nasforge.data import DETECTION_DATASETS
from nasforge.experiment._race import race_metric
from nasforge.experiment._search import SearchHooks
from nasforge.registry import DATASETS, ESTIMATORS, EXECUTORS, SCHEDULERS, SPACES, STRATEGIES

__all__ = ["search"]

_DATASET_NOTES = {
    "folder": "class folders of images in --data-dir",
    "npz": "arrays in the .npz file --data-dir",
}
_EXECUTOR_NOTES = {
    "inprocess": "default; one at a time in this process",
    "process": "one process per trial: isolation, limits, several at once",
    "ray": "a Ray cluster; pip install 'nasforge[ray]'",
}


def search(
    config: Annotated[
        Path | None, typer.Argument(help="YAML search config; omitted: the built-in default (digits).")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help=f"Dataset name: {names_help(DATASETS, _DATASET_NOTES)}; for object detection: "
            f"{', '.join(DETECTION_DATASETS)} (yolo: a YOLO folder in --data-dir; coco: the JSON file as "
            "--data-dir; mnist-det / fashion-det: the MNIST / Fashion-MNIST IDX files in --data-dir). "
            "A detection dataset defaults to --space detector, --estimator train_det and the objective "
            "val_map.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Directory holding the dataset files (or set NASFORGE_DATA_DIR)."),
    ] = None,
    download: Annotated[
        bool | None,
        typer.Option("--download/--no-download", help="Download missing dataset files into --data-dir."),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            "--space",
            help=f"Search space (default chain_cnn; detector for detection data): {names_help(SPACES)} "
            "(space options go in the config file's space: mapping).",
        ),
    ] = None,
    estimator: Annotated[
        str | None,
        typer.Option(
            "--estimator",
            "-e",
            help=f"How a trial is scored (default train; train_det for detection data): "
            f"{names_help(ESTIMATORS)} (estimator options go in the config file's estimator: mapping).",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            help=f"Search strategy (default evolution): {names_help(STRATEGIES)} (`nasforge list` "
            "shows their aliases; strategy options go in the config file's strategy: mapping; darts "
            "and gdas need the nb201 space).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help=f"Early stopping of unpromising trials after each epoch: {names_help(SCHEDULERS)} "
            "(default: none; the successive_halving, hyperband and bohb strategies bring their own).",
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
            "its estimated cost (MNIST-sized data: half, training as many epochs as fit, up to 60; "
            "final: {time_share, max_epochs} in a config); the search stops (cutting running "
            "trials) when its share is spent, and the final training stops at the end of the "
            "budget. Alone, trials are unlimited; "
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
            help=f"Where trials run: {names_help(EXECUTORS, _EXECUTOR_NOTES)}.",
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
            "balanced_accuracy or auc suit imbalanced classes. Classification only: detectors are "
            "ranked by val_map (a config's objectives: [val_map_50] picks mAP@.5).",
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
    augment: Annotated[
        str | None,
        typer.Option(
            "--augment",
            help="Augmentation of the trials and the final training: auto (default: the recipe for "
            f"the data, said when the search starts: {recipe_help('augment')}), none, shift (random "
            "shifts of up to 1/8 of the image) or shift+flip (also left-right flips: natural images "
            "only, not digits or text). Classification only.",
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(
            "--label-smoothing",
            metavar="X",
            help="Label smoothing in [0, 1) of the trials and the final training (default: the "
            f"recipe for the data: {recipe_help('label_smoothing')}). Classification only.",
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
        typer.Option(
            "--final-epochs",
            min=0,
            help="Epochs of the final training of the best (0: skip); with --time, these (as many "
            "as fit) instead of a share of the budget filled with epochs.",
        ),
    ] = None,
    race: Annotated[
        int | None,
        typer.Option(
            "--race",
            metavar="K",
            help="Final race: train the top K distinct trials with the final recipe for a quarter of "
            "the final epochs (--race-epochs) and send the best by --metric on validation to the "
            "final training; a search's short trials on a few hundred validation images often rank "
            "a lucky network first. With a small validation set (under 1,000 images or under 50 in a "
            "class) the race scores by 3-fold cross-validation on train+val (--race-folds). "
            "Default 1: the best trial alone. --time gives the race its share.",
        ),
    ] = None,
    race_epochs: Annotated[
        int | None,
        typer.Option(
            "--race-epochs",
            metavar="N",
            help="Epochs each final race candidate trains (with --race K; default a quarter of the final "
            "epochs, at least 1, at most --final-epochs; equal to them, the winner's race training is "
            "the final model). The config's final: race_epochs.",
        ),
    ] = None,
    race_folds: Annotated[
        int | None,
        typer.Option(
            "--race-folds",
            metavar="K",
            help="Folds of the final race's cross-validation on train+val, used when the validation set "
            "is small (with --race; default 3, at least 2). The config's final: race_folds.",
        ),
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
    with user_errors():
        from nasforge.config import search_config
        from nasforge.experiment._search import run_search

        cfg = search_config(
            config,
            dataset=dataset,
            data_dir=data_dir,
            download=download,
            space=space,
            estimator=estimator,
            strategy=strategy,
            scheduler=scheduler,
            trials=trials,
            time=time_budget,
            timeout=timeout,
            executor=executor,
            concurrency=concurrency,
            trial_time_limit=trial_time_limit,
            trial_memory_limit=trial_memory_limit,
            address=address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            trials_per_gpu=trials_per_gpu,
            device=device,
            amp=amp,
            seed=seed,
            epochs=epochs,
            metric=metric,
            fraction=fraction,
            batch_size=batch_size,
            augment=augment,
            label_smoothing=label_smoothing,
            class_names=class_names,
            final_epochs=final_epochs,
            race=race,
            race_epochs=race_epochs,
            race_folds=race_folds,
            name=name,
            run_dir=run_dir,
            storage=storage,
            track=track,
            tracking_uri=tracking_uri,
        )
        progress = Reporter(out, enabled=not quiet)
        terminated: list[int] = []
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt(terminated))
        try:
            with progress:
                result = run_search(cfg, resume=resume, hooks=_SearchProgress(cfg, progress))
        except KeyboardInterrupt:
            how = "stopped by SIGTERM" if terminated else "interrupted"
            err.print(f"{how}; continue with the same command and --resume")
            raise typer.Exit(143 if terminated else 130) from None  # 128 + the signal, as shells do
        finally:
            signal.signal(signal.SIGTERM, previous)
        _print_result(result)


class _SearchProgress(SearchHooks):
    """The search's progress as bars (terminal) or lines (log): trials, supernet and final epochs."""

    def __init__(self, cfg: Any, progress: Reporter) -> None:
        self.cfg = cfg
        self.progress = progress
        self.primary = cfg.objectives[0].lstrip("-+")
        self.race_metric = race_metric(cfg.objectives)
        self.screened = 0
        self.experiment: Any = None

    def on_start(self, experiment: Any, run_dir: Path, resumed: bool) -> None:
        cfg = self.cfg
        done = experiment.finished_count()
        verb = f"resuming {run_dir} ({done} trials done)" if resumed else f"run directory {run_dir}"
        out.print(
            f"[bold]nasforge search[/]: {cfg.data.name}, space {experiment.space.name}, "
            f"strategy {cfg.strategy['name']}"
            + (f", executor {cfg.executor['name']}" if cfg.executor else "")
            + f"; {verb}",
            highlight=False,
        )
        self.progress.stage("trials", "trials", cfg.trials, done=done, unit="trial")
        self.experiment = experiment

    def on_recipe(self, line: str) -> None:
        self.progress.note(escape(line))

    def on_stage(self, stage: str, total: int) -> None:
        self.progress.stage(stage, f"{stage} epochs", total, unit="epoch")

    def on_plan(self, line: str) -> None:
        self.progress.note(escape(line))

    def on_trial(self, experiment: Any, trial: Any) -> None:
        if trial.screened:  # counted on the bar, not a line each: there can be hundreds
            self.screened += 1
        elif trial.state.value == "FAIL":
            last = (trial.error or "").strip().splitlines()[-1:] or ["?"]
            self.progress.note(f"[yellow]trial {trial.number} failed:[/] {escape(last[0])}")
        best = best_text(experiment, self.primary)
        if self.screened:
            best = f"{best}{', ' if best else ''}{self.screened} screened out by constraints"
        self.progress.update("trials", experiment.finished_count(), best)

    def on_epoch(self, stage: str, epoch: int, epochs: int, record: Mapping[str, Any]) -> None:
        if stage == "final":
            self.progress.update("final", epoch, epoch_text(record))
            return
        text = f"train acc {record['train_accuracy']:.3f}" if "train_accuracy" in record else ""
        if "entropy" in record:
            text += f", alpha entropy {record['entropy']:.3f}"
        self.progress.update(stage, epoch, text)
        if epoch == epochs:  # the trials' time per trial and ETA start now
            done = self.experiment.finished_count()
            self.progress.stage("trials", "trials", self.cfg.trials, done=done, unit="trial")

    def on_note(self, line: str) -> None:
        self.progress.note(f"[yellow]{escape(line)}[/]")

    def on_race_start(self, candidates: Any, epochs: int, how: str) -> None:
        numbers = ", ".join(str(t.number) for t in candidates)
        self.progress.note(
            f"final race: trials {numbers}, {epochs} epochs each, scored by "
            + ("the validation split" if how == "holdout" else how + " on train+val")
            + " ..."
        )
        self.progress.stage("race", "final race candidates", len(candidates), unit="candidate")

    def on_race_candidate(self, done: int, total: int, entry: Mapping[str, Any]) -> None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in entry["race"].items() if k == self.race_metric)
        self.progress.update("race", done, f"trial {entry['trial']}: {scores}")

    def on_final_start(self, experiment: Any, epochs: int) -> None:
        self.progress.note(f"training the best architecture for {epochs} epochs ...")
        self.progress.stage("final", "final training epochs", epochs, unit="epoch")


def _print_result(result: Any) -> None:
    """The leaderboard, the best architecture and its final training, the time spent, the files."""
    exp = result.experiment
    out.print(leaderboard_table(exp, 5, out.width))
    best = result.best
    if best is None:
        out.print("[red]no trial completed[/]; see the failures above and in leaderboard.csv")
        raise typer.Exit(1)
    if result.race is not None:
        out.print(race_table(result.race.to_dict(), exp, out.width))
    if result.final is not None:
        m = result.final.metrics
        cut = " (cut by the time budget)" if m.get("cut_by_time_limit") else ""
        if result.race is not None and result.race.run is not None:
            cut += " (its race training: race_epochs equal the final epochs)"
        out.print(
            f"[bold green]best architecture[/] (trial {best.number}"
            + (", cut by the time budget" if best.state.value == "PRUNED" else "")
            + (", the race winner" if result.race is not None else "")
            + f"): {describe_arch(best.architecture)}\n"
            f"final training: {m['epochs']} epochs{cut}, {final_scores(m)}, {m['params']:,} parameters",
            highlight=False,
        )
        print_test_report(getattr(result.final, "test_report", None))  # a detector has none
    elif result.final_note is not None:  # a worker of a shared database: another one trains it
        out.print(result.final_note, highlight=False)
    if result.time_budget is not None:
        from nasforge._progress import format_duration

        tb = result.time_budget
        search_s = tb["search_s"] or 0.0
        race_s = tb.get("race_s") or 0.0
        raced = f"{format_duration(race_s)} final race, " if race_s else ""
        out.print(
            f"time budget {format_duration(tb['total_s'])}: spent {format_duration(tb['spent_s'])} "
            f"({format_duration(search_s)} search, {len(exp.trials)} trials; {raced}"
            f"{format_duration(tb['spent_s'] - search_s - race_s)} final training and files)",
            highlight=False,
        )
    out.print(
        f"results in {result.run_dir}/ (config.yaml, leaderboard.csv, best_architecture.json"
        + (", final.json, model.nasforge)" if result.final is not None else ")"),
        highlight=False,
    )


def _terminate_as_interrupt(seen: list[int]) -> Callable[[int, Any], None]:
    """A SIGTERM handler (``kill``, a cluster scheduler's stop) that stops a search as Ctrl-C does,
    cleanly, and appends the signal to ``seen`` so the command can say which stop it was."""

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        raise KeyboardInterrupt

    return handler
