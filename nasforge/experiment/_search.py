"""One whole search from a config: data, space, strategy, estimator, loop, final training, files.

This is what ``nasforge search`` runs; it is a plain function so scripts and tests can call it.
Everything is validated before the first trial starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import re
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._budget import epoch_seconds_from, expected_line, fit_epochs, split_time
from nasforge._paths import ensure_writable_dir
from nasforge._progress import format_duration
from nasforge._seeds import derive_seed
from nasforge.config import SearchConfig
from nasforge.errors import ConfigError, InfeasibleError, SpaceError, TrialFailed
from nasforge.estimate import Estimator, TrainedModel
from nasforge.experiment._experiment import Callback, Experiment
from nasforge.experiment._rundir import RunDir, atomic_write, write_run_files
from nasforge.experiment._screening import impossible_constraint
from nasforge.experiment._trial import Trial, TrialState
from nasforge.experiment._workers import Heartbeat, searching, still_there
from nasforge.objective import Objective
from nasforge.registry import ESTIMATORS, EXECUTORS, SCHEDULERS, STRATEGIES, check_options
from nasforge.space import space_from_config

if TYPE_CHECKING:
    from nasforge.track import Tracker

__all__ = ["SearchResult", "prepare_search", "resolve_run_dir", "run_search"]

#: ``on_epoch(stage, epoch, epochs, metrics)`` of :func:`run_search`
EpochCallback = Callable[[str, int, int, Mapping[str, Any]], None]


@dataclass
class SearchResult:
    """What :func:`run_search` produced."""

    experiment: Experiment
    run_dir: Path
    final: TrainedModel | None
    resumed: bool
    time_budget: dict[str, Any] | None = None  # with a time budget: the plan and what was spent
    best: Trial | None = None  # the trial trained last: exp.best(), or under a time budget that cut
    # every trial, the best of the cut ones
    #: why this worker of a shared database did not train the best (another one does), else None
    final_note: str | None = None


@dataclass
class PreparedSearch:
    """Validated components of a search, before any trial ran."""

    config: SearchConfig
    task: Any
    experiment_kwargs: dict[str, Any]
    estimator: Estimator
    strategy_name: str
    strategy_options: dict[str, Any]
    scheduler_name: str | None = None
    scheduler_options: dict[str, Any] | None = None
    executor_name: str | None = None
    executor_options: dict[str, Any] | None = None
    trackers: list[Tracker] = field(default_factory=list)


def resolve_run_dir(config: SearchConfig, *, resume: bool, base: Path | None = None) -> Path:
    """Where the run lives.

    An explicit ``run_dir`` is used as given. The default ``runs/<name>`` gets a ``-2``, ``-3``, ...
    suffix when it already holds a search, so a new run never touches an old one; with ``resume`` the
    newest of them is continued. With a shared ``storage`` URL the experiment is found by name in
    that database (a worker joins it, with or without ``resume``) and the run directory, default
    ``runs/<name>``, only holds this worker's files.
    """
    root = base or Path.cwd()
    if config.storage is not None:  # the database is shared: workers join the experiment by name
        return Path(config.run_dir) if config.run_dir is not None else root / "runs" / config.run_name()
    if config.run_dir is not None:
        path = Path(config.run_dir)
        if resume and not RunDir(path).holds_search():
            raise ConfigError(f"nothing to resume: {path} holds no search ({RunDir.DATABASE} is missing)")
        if not resume and RunDir(path).holds_search():
            raise ConfigError(
                f"{path} already holds a search; add --resume to continue it, or choose another --run-dir"
            )
        return path
    name = config.run_name()
    parent = root / "runs"
    pattern = re.compile(rf"^{re.escape(name)}(?:-(\d+))?$")
    taken = sorted(
        (int(m.group(1) or 1), p)
        for p in (parent.iterdir() if parent.is_dir() else [])
        if (m := pattern.match(p.name)) and RunDir(p).holds_search()
    )
    if resume:
        if not taken:
            raise ConfigError(
                f"nothing to resume: no run named '{name}' under {parent}; run without --resume to start one"
            )
        return taken[-1][1]
    if not taken:
        return parent / name
    return parent / f"{name}-{taken[-1][0] + 1}"


def prepare_search(config: SearchConfig) -> PreparedSearch:
    """Load the data and build and check every component; raises before any trial runs."""
    from nasforge.data import load

    exec_section = dict(config.executor or {})
    on_ray = exec_section.get("name") is not None and EXECUTORS.canonical_name(exec_section["name"]) == "ray"
    if not on_ray:  # a Ray driver may have no GPU where its workers do: they resolve the name
        from nasforge._device import check_device_and_amp

        check_device_and_amp(config.device, config.amp)
    data = config.data
    task = load(
        data.name, data.root, fraction=data.fraction, seed=data.seed, download=data.download, **data.options
    )
    if data.class_names is not None:
        task = task.with_class_names(data.class_names)
    space = space_from_config(config.space).bind(task.input_shape, task.num_classes)
    try:
        space.sample(np.random.default_rng(config.seed), max_tries=2000)
    except SpaceError as exc:
        raise ConfigError(f"space has no valid architecture for {task.describe()}: {exc}") from None
    objective = Objective(config.objectives, constraints=config.constraints)

    est_options = dict(config.estimator)
    est_name = est_options.pop("name")
    est_cls = ESTIMATORS.get(est_name)
    _where(est_cls, est_options, config)
    check_options("estimator", est_name, est_cls, {"task": task, **est_options})
    if on_ray:  # the driver may have no GPU: the name is checked here, resolved on each worker
        from nasforge._device import check_amp, check_device_name

        wanted: dict[str, Any] = {k: est_options.pop(k) for k in ("device", "amp") if k in est_options}
        estimator = est_cls(task=task, **est_options)
        if "device" in wanted:
            estimator.device = check_device_name(wanted["device"])
        if "amp" in wanted:
            estimator.amp = check_amp(wanted["amp"])
        est_options.update(wanted)
    else:
        estimator = est_cls(task=task, **est_options)
    impossible = impossible_constraint(space, objective, estimator)
    if impossible is not None:  # before the run directory exists
        raise InfeasibleError(impossible)

    strat_options = dict(config.strategy)
    strat_name = strat_options.pop("name")
    strat_cls = STRATEGIES.get(strat_name)
    _where(strat_cls, strat_options, config)
    check_options("strategy", strat_name, strat_cls, strat_options)
    probe = strat_cls(**{"seed": 0, **strat_options})  # validates the options now, not after training
    probe.setup(space, objective)  # and that it can search this space

    sched_name: str | None = None
    sched_options: dict[str, Any] | None = None
    if config.scheduler is not None:
        sched_options = dict(config.scheduler)
        sched_name = SCHEDULERS.canonical_name(sched_options.pop("name"))
        sched_cls = SCHEDULERS.get(sched_name)
        check_options("scheduler", sched_name, sched_cls, sched_options)
        sched_cls(**sched_options)

    exec_name: str | None = None
    exec_options: dict[str, Any] | None = None
    if config.executor is not None:
        exec_options = dict(config.executor)
        exec_name = EXECUTORS.canonical_name(exec_options.pop("name"))
        if exec_name == "process" and "gpus" not in exec_options and not _trials_rotate_gpus(est_options):
            exec_options["gpus"] = []  # CPU trials (or a fixed cuda:N): no GPU rotation
        EXECUTORS.create(exec_name, **exec_options)  # validates the options; started by the run

    from nasforge.track import make_tracker

    trackers = []  # names, options and installed packages checked now; they open files on first use
    for entry in config.track:
        track_options = dict(entry)
        trackers.append(make_tracker(track_options.pop("name"), **track_options))

    from nasforge.estimate._train import TrainBudget

    final = config.final
    if final.epochs:
        TrainBudget(
            epochs=final.epochs,
            batch_size=final.batch_size,
            lr=final.lr,
            optimizer=final.optimizer,
            weight_decay=final.weight_decay,
            schedule=final.schedule,
        )
    return PreparedSearch(
        config=config,
        task=task,
        experiment_kwargs={"space": space, "objectives": objective, "seed": config.seed},
        estimator=estimator,
        strategy_name=strat_name,
        strategy_options=strat_options,
        scheduler_name=sched_name,
        scheduler_options=sched_options,
        executor_name=exec_name,
        executor_options=exec_options,
        trackers=trackers,
    )


def _entries(path: Path) -> set[str] | None:
    """The names in ``path`` now, or None when it does not exist yet."""
    return {p.name for p in path.iterdir()} if path.is_dir() else None


def _remove_new(run_dir: Path, before: set[str] | None) -> None:
    """Remove what this run created in ``run_dir`` (the directory itself if it created it).

    Only for a new run whose constraints nothing satisfied: its database holds nothing but
    screened-out proposals, so keeping it would only make the next attempt a ``-2`` run.
    """
    import shutil

    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for entry in run_dir.iterdir():
        if entry.name not in before:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _where(cls: Any, options: dict[str, Any], config: SearchConfig) -> None:
    """Give a component that trains (an estimator, a one-shot strategy) the config's ``device`` and
    ``amp`` unless its own options set them."""
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for key in ("device", "amp"):
        if key in params and key not in options:
            options[key] = getattr(config, key)


def _trials_rotate_gpus(est_options: dict[str, Any]) -> bool:
    """Whether trials with these estimator options want the process executor's GPU rotation:
    ``auto`` or ``cuda`` (not a fixed ``cuda:N``) that means a CUDA GPU here."""
    from nasforge._device import check_device_name, resolve_device

    name = check_device_name(est_options.get("device", "auto"))
    return name in ("auto", "cuda") and resolve_device(name).type == "cuda"


def run_search(
    config: SearchConfig,
    *,
    resume: bool = False,
    callbacks: tuple[Callback, ...] = (),
    on_start: Callable[[Experiment, Path, bool], None] | None = None,
    on_final_start: Callable[[Experiment, int], None] | None = None,
    on_epoch: EpochCallback | None = None,
    base: Path | None = None,
    on_plan: Callable[[str], None] | None = None,
) -> SearchResult:
    """Run the search described by ``config`` and train the best architecture.

    Args:
        config: the validated configuration.
        resume: continue the newest run of this name (or the given ``run_dir``).
        callbacks: called after each finished trial (before the config's ``track:`` trackers).
        on_start: called once the experiment is open, with (experiment, run_dir, resumed).
        on_final_start: called before the final training starts, with the epochs it will run
            (fewer than configured when a time budget leaves no room for them all).
        on_epoch: progress of the long trainings outside the trials, called after each epoch as
            ``on_epoch(stage, epoch, epochs, metrics)``: stage ``"supernet"`` for the supernet a
            one-shot strategy (spos, darts, gdas) trains before its first proposal, ``"final"`` for
            the final training.
        base: directory under which ``runs/`` is created (default: the working directory).
        on_plan: called with one line saying how long the search expects to take: with a time
            budget (``config.time``) how it is split, up front and again once the first trial
            measured the costs (:mod:`nasforge._budget`); with a trial count, after the first
            trial, the time the rest should take.

    With ``config.time`` the budget counts from this call (a resumed run gets it again): the
    search stops starting trials and cuts the running ones (at their next epoch; a one-shot
    strategy's supernet training before its first proposal is not cut) when its share is spent,
    and the final training gets the rest as a time limit, with as many of its epochs as fit.
    """
    budget = _TimeBudget(config, config.time) if config.time is not None else None
    run_dir = resolve_run_dir(config, resume=resume, base=base)
    ensure_writable_dir(run_dir, what="run directory", hint="choose another --run-dir (run_dir: in a config)")
    prepared = prepare_search(config)
    # a new run that fails before training anything leaves nothing behind (see _remove_new)
    fresh = not resume and config.storage is None
    before = _entries(run_dir) if fresh else None
    exp = Experiment(config.run_name(), run_dir=run_dir, storage=config.storage, **prepared.experiment_kwargs)
    if not resume or not RunDir(run_dir).config.exists():
        atomic_write(RunDir(run_dir).config, config.to_yaml())
    exp.set_strategy(prepared.strategy_name, **prepared.strategy_options)  # restores a saved state
    if on_epoch is not None and hasattr(exp.strategy, "pending_epochs"):

        def on_supernet_epoch(epoch: int, epochs: int, record: dict[str, Any]) -> None:
            on_epoch("supernet", epoch, epochs, record)

        exp.strategy.on_epoch = on_supernet_epoch  # type: ignore[union-attr]
    if on_start is not None:
        on_start(exp, run_dir, resume)
    say = on_plan if on_plan is not None else (lambda line: None)
    expect: tuple[Callback, ...] = ()
    if budget is None and config.trials is not None and on_plan is not None:
        expect = (_expectation(config, prepared, say),)
    with contextlib.ExitStack() as tracking:  # trackers are closed when the loop ends, however it ends
        for tracker in prepared.trackers:
            tracking.enter_context(tracker)
        run_kwargs: dict[str, Any] = {
            "estimator": prepared.estimator,
            "scheduler": prepared.scheduler_name,
            "scheduler_options": prepared.scheduler_options,
            "callbacks": (*callbacks, *expect, *prepared.trackers),
            "executor": prepared.executor_name,
            "executor_options": prepared.executor_options,
            "max_screened": config.max_screened,
        }
        try:
            if budget is None:
                exp.run(n_trials=config.trials, timeout=config.timeout, **run_kwargs)
            else:
                budget.search(exp, prepared, run_kwargs, say)
        except InfeasibleError as exc:
            if not fresh or exp.finished_count() > 0:
                raise
            tracking.close()
            _remove_new(run_dir, before)
            raise InfeasibleError(f"{exc} (removed {run_dir}: it held only screened proposals)") from None
    # On a shared database every worker ends here; only the last to stop searching writes the
    # files from the database, and exactly one of those trains the best (see _final_turn).
    shared = config.storage is not None
    last = True
    if shared:
        exp.refresh(force=True)  # the trials other workers finished after our last look
        last = not searching(exp.storage, exp.worker_id)
        if last:
            write_run_files(exp)
    if last and len(exp.objective.names) > 1:
        from nasforge.experiment._pareto import write_pareto

        write_pareto(exp, run_dir)
    spent: dict[str, Any] | None = None  # with a time budget: what final.json and the result record
    best = exp.best()
    if best is None and budget is not None:
        best = budget.best_cut(exp)
    final = None
    note = None
    epochs, time_limit = config.final.epochs, None
    turn = True
    if best is not None and config.final.epochs > 0 and shared:
        turn, note = _final_turn(exp, run_dir, last)
    if budget is not None and best is not None and epochs > 0 and turn:
        epochs, time_limit = budget.final(best, prepared, say)
    if best is not None and config.final.epochs > 0 and turn:
        # on a shared database, the heartbeat shows other workers that the claimer is alive
        alive = (
            Heartbeat(exp.storage, exp.worker_id, exp.worker_index) if shared else contextlib.nullcontext()
        )
        with alive:
            final, spent = _train_final(
                exp, best, prepared, run_dir, epochs, time_limit, budget, on_final_start, on_epoch
            )
            if shared:
                me = {"worker": exp.worker_id, "run_dir": str(run_dir)}
                exp.storage.set_meta(f"final.{len(exp.trials)}.done", me)
    return SearchResult(
        experiment=exp,
        run_dir=run_dir,
        final=final,
        resumed=resume,
        best=best,
        time_budget=spent if spent is not None or budget is None else budget.record(final),
        final_note=note,
    )


def _final_turn(exp: Experiment, run_dir: Path, last: bool) -> tuple[bool, str | None]:
    """Whether this worker of a shared database trains the best; if not, who does (a sentence).

    A worker that stops while others still search leaves it to them: the last to stop sees every
    trial. Workers that stop at the same moment all see none searching and claim the key
    ``final.<trials>.<attempt>`` in the storage; the insert is atomic, so one of them wins. When
    the winner is gone (killed) without having written ``final.<trials>.done``, the next worker
    that ends (a worker started again with the same command) claims the next attempt.
    """
    if not last:
        others = ", ".join(w.id for w in searching(exp.storage, exp.worker_id))
        return False, f"the final training is left to the worker(s) still running, which end last: {others}"
    count = len(exp.trials)
    me = {"worker": exp.worker_id, "run_dir": str(run_dir)}
    for attempt in itertools.count(1):
        done = exp.storage.get_meta(f"final.{count}.done")
        if isinstance(done, dict):
            where = f"worker {done.get('worker')} in {done.get('run_dir')}"
            return False, f"the final training of these trials was done by {where}"
        holder = exp.storage.claim(f"final.{count}.{attempt}", me)
        if not isinstance(holder, dict) or holder.get("worker") == exp.worker_id:
            return True, None
        if still_there(exp.storage, str(holder.get("worker"))):
            return False, (
                f"the final training is done by worker {holder.get('worker')} in {holder.get('run_dir')}"
            )
    raise AssertionError("unreachable")  # itertools.count never ends


def _train_final(
    exp: Experiment,
    best: Trial,
    prepared: PreparedSearch,
    run_dir: Path,
    epochs: int,
    time_limit: float | None,
    budget: _TimeBudget | None,
    on_final_start: Callable[[Experiment, int], None] | None,
    on_epoch: EpochCallback | None,
) -> tuple[TrainedModel, dict[str, Any] | None]:
    """Train ``best`` with the config's final budget; write model.nasforge and final.json.

    Returns the model and, under a time budget, what was spent (also in final.json)."""
    config = prepared.config
    spent: dict[str, Any] | None = None
    if on_final_start is not None:
        on_final_start(exp, epochs)
    f = config.final
    final = best.train(
        prepared.task,
        epochs=epochs,
        batch_size=f.batch_size,
        lr=f.lr,
        optimizer=f.optimizer,
        weight_decay=f.weight_decay,
        schedule=f.schedule,
        seed=derive_seed(exp.seed, 3),
        device=config.device,
        amp=config.amp,
        on_epoch=None if on_epoch is None else lambda e, n, m: on_epoch("final", e, n, m),
        time_limit=time_limit,
    )
    final.save(
        RunDir(run_dir).model,
        provenance={
            "source": "nasforge search",
            "run": run_dir.name,
            "trial": best.number,
            "seed": derive_seed(exp.seed, 3),
        },
    )
    payload = {
        "trial": best.number,
        "architecture": best.architecture.to_dict(),
        "search_metrics": dict(best.metrics),
        "final_metrics": dict(final.metrics),
        "test_report": final.test_report,
        "final_training": f.model_dump(),
        "task": {
            "name": final.task_name,
            "input_shape": list(final.input_shape),
            "class_names": list(final.class_names),
            "mean": list(final.mean),
            "std": list(final.std),
        },
        "model": RunDir.MODEL,
    }
    if budget is not None:
        payload["time_budget"] = spent = budget.record(final)
    atomic_write(RunDir(run_dir).final, json.dumps(payload, indent=2) + "\n")
    return final, spent


def _concurrency(config: SearchConfig) -> int:
    value = (config.executor or {}).get("concurrency") or 1
    return int(value) if isinstance(value, (int, float)) else 1


def _measured(exp: Experiment) -> list[Trial]:
    """Trials that ran their estimator (completed or stopped early), as cost measurements."""
    return [
        t
        for t in exp.trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.duration is not None and not t.screened
    ]


def _expectation(config: SearchConfig, prepared: PreparedSearch, say: Callable[[str], None]) -> Callback:
    """A callback that says, after the first measured trial, how long the rest should take."""
    said: list[bool] = []

    def callback(exp: Experiment, trial: Trial) -> None:
        if said or config.trials is None:
            return
        measured = _measured(exp)
        if not measured:
            return
        said.append(True)
        epoch_s = epoch_seconds_from([t.metrics for t in measured], resolution=prepared.task.input_shape[1])
        durations = [t.duration for t in measured if t.duration is not None]
        say(
            expected_line(
                trials_left=max(0, config.trials - exp.finished_count()),
                trial_seconds=statistics.median(durations),
                concurrency=_concurrency(config),
                final_epochs=config.final.epochs,
                epoch_seconds=epoch_s,
            )
        )

    return callback


class _TimeBudget:
    """A time budget (``config.time``) from the start of :func:`run_search`; the rule that splits
    it is :func:`nasforge._budget.split_time`, this applies it to the loop and the final training."""

    def __init__(self, config: SearchConfig, total: float) -> None:
        self.config = config
        self.started = time.monotonic()
        self.total = total
        self.concurrency = _concurrency(config)
        self.plan = split_time(self.total, final_epochs=config.final.epochs, concurrency=self.concurrency)
        self.search_spent: float | None = None
        self.final_epochs = config.final.epochs
        self.time_limit: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def measure(self, exp: Experiment, prepared: PreparedSearch) -> bool:
        """Re-split the budget from the trials' measured costs; False if there are none yet."""
        measured = _measured(exp)
        if not measured:
            return False
        durations = [t.duration for t in measured if t.duration is not None]
        self.plan = split_time(
            self.total,
            elapsed=self.elapsed(),
            final_epochs=self.config.final.epochs,
            epoch_seconds=epoch_seconds_from(
                [t.metrics for t in measured], resolution=prepared.task.input_shape[1]
            ),
            trial_seconds=statistics.median(durations),
            concurrency=self.concurrency,
        )
        return True

    def _run(self, exp: Experiment, n_trials: int | None, run_kwargs: dict[str, Any]) -> None:
        left = self.plan.search - self.elapsed()
        if self.config.timeout is not None:
            left = min(left, self.config.timeout - self.elapsed())
        if left > 0 and (n_trials is None or exp.finished_count() < n_trials):
            exp.run(n_trials=n_trials, timeout=left, hard_timeout=True, **run_kwargs)
            run_kwargs.update(scheduler=None, scheduler_options=None)  # attached now: keep its state

    def search(
        self,
        exp: Experiment,
        prepared: PreparedSearch,
        run_kwargs: dict[str, Any],
        say: Callable[[str], None],
    ) -> None:
        """The search's share: the first trial(s) under the fixed split, the rest under the measured one."""
        run_kwargs = dict(run_kwargs)
        if not self.measure(exp, prepared):  # a resumed run may have measured trials already
            say(self.plan.describe())
            first = exp.finished_count() + self.concurrency
            trials = self.config.trials
            self._run(exp, first if trials is None else min(first, trials), run_kwargs)
            self.measure(exp, prepared)
        if self.plan.measured or self.plan.trial_seconds is not None:
            say(self.plan.describe())
        self._run(exp, self.config.trials, run_kwargs)
        self.search_spent = self.elapsed()

    def best_cut(self, exp: Experiment) -> Trial | None:
        """When the budget cut every trial: the best of them on the metrics they reached, so the
        budget still buys a model (the cut trials are not comparable with completed ones)."""
        scored = []
        for t in exp.trials:
            if t.state is TrialState.PRUNED and t.metrics:
                try:
                    values = exp.objective.values(t.metrics)
                except TrialFailed:
                    continue
                scored.append(
                    dataclasses.replace(t, values=values, feasible=exp.objective.feasible(t.metrics))
                )
        return exp.objective.best(scored)

    def final(self, best: Trial, prepared: PreparedSearch, say: Callable[[str], None]) -> tuple[int, float]:
        """Epochs and time limit of the final training: the rest of the budget, at the best trial's speed."""
        left = self.total - self.elapsed()
        resolution = prepared.task.input_shape[1]
        epoch_s = epoch_seconds_from([best.metrics], resolution=resolution) or self.plan.epoch_seconds
        configured = self.config.final.epochs
        self.final_epochs = fit_epochs(left, configured, epoch_s)
        # at least a little: a model trained for a moment is more use than none
        self.time_limit = max(left, 0.01 * self.total)
        if self.final_epochs < configured:
            say(
                f"final training: {self.final_epochs} of the {configured} epochs fit in the "
                f"{format_duration(left)} left (~{format_duration(epoch_s or 0)} each)"
            )
        return self.final_epochs, self.time_limit

    def record(self, final: TrainedModel | None) -> dict[str, Any]:
        """What final.json keeps: the budget, the plan and what was spent."""
        out: dict[str, Any] = {
            "total_s": round(self.total, 3),
            "plan": self.plan.to_dict(),
            "search_s": None if self.search_spent is None else round(self.search_spent, 3),
            "final_epochs": self.final_epochs,
            "final_time_limit_s": None if self.time_limit is None else round(self.time_limit, 3),
            "spent_s": round(self.elapsed(), 3),
        }
        if final is not None:
            out["final_s"] = final.metrics.get("seconds")
            out["final_cut"] = bool(final.metrics.get("cut_by_time_limit", False))
        return out
