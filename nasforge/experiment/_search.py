"""One whole search from a config: data, space, strategy, estimator, loop, final training, files.

This is what ``nasforge search`` runs; it is a plain function so scripts and tests can call it.
Everything is validated before the first trial starts, and each component is built once
(:mod:`nasforge.experiment._prepare`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge._defaults import RECIPE_KEYS
from nasforge._paths import ensure_writable_dir
from nasforge._seeds import derive_seed
from nasforge.config import SearchConfig
from nasforge.data import DetectionTask
from nasforge.errors import InfeasibleError, NasforgeError
from nasforge.estimate._model import TrainedNetwork
from nasforge.experiment._experiment import Callback, Experiment
from nasforge.experiment._pareto import write_pareto
from nasforge.experiment._prepare import PreparedSearch, prepare_search
from nasforge.experiment._race import (
    RaceResult,
    ValidationCheck,
    check_validation,
    race_candidates,
    race_cost,
    race_metric,
    race_scale,
    reuses_winner,
    run_race,
)
from nasforge.experiment._recipe import final_recipe, recipe_line
from nasforge.experiment._rundir import RunDir, _Before, atomic_write, resolve_run_dir, write_run_files
from nasforge.experiment._search_budget import TimeBudget, expectation
from nasforge.experiment._workers import Heartbeat, searching, still_there
from nasforge.trial import Trial

__all__ = ["PreparedSearch", "SearchHooks", "SearchResult", "prepare_search", "resolve_run_dir", "run_search"]


@dataclass
class SearchResult:
    """What :func:`run_search` produced."""

    experiment: Experiment
    run_dir: Path
    final: TrainedNetwork | None
    resumed: bool
    time_budget: dict[str, Any] | None = None  # with a time budget: the plan and what was spent
    best: Trial | None = None  # the trial trained last: exp.best(), or under a time budget that cut
    # every trial, the best of the cut ones
    #: why this worker of a shared database did not train the best (another one does), else None
    final_note: str | None = None
    #: the final race (``final.race`` > 1), else None
    race: RaceResult | None = None
    #: the validation split's size and whether it is small
    #: (:func:`~nasforge.experiment._race.check_validation`); None for detection data
    validation: ValidationCheck | None = None


class SearchHooks:
    """What :func:`run_search` reports while it runs; every method is a no-op here.

    Subclass it and override what you show (``nasforge search`` turns these into progress bars).
    The calls come in this order: :meth:`on_start` once the experiment is open and its strategy
    attached, :meth:`on_recipe` right after it, :meth:`on_stage` when a strategy trains something
    before its first proposal, :meth:`on_plan` whenever the expected duration is known or
    changes, :meth:`on_trial` after each finished trial, :meth:`on_epoch` during the long
    trainings outside the trials, :meth:`on_race_start` and :meth:`on_race_candidate` during a
    final race, and :meth:`on_final_start` before the final training. :meth:`on_note` may come at
    any point after :meth:`on_start`.
    """

    def on_note(self, line: str) -> None:
        """A remark the user should see, one line: a small validation split (after :meth:`on_start`),
        a race with fewer candidates than asked for."""

    def on_race_start(self, candidates: Sequence[Trial], epochs: int, how: str) -> None:
        """A final race starts: ``candidates`` (best search rank first) train ``epochs`` each,
        scored ``how`` (``"holdout"``: on the validation split, or ``"3-fold cross-validation"``)."""

    def on_race_candidate(self, done: int, total: int, entry: Mapping[str, Any]) -> None:
        """The ``done``-th of ``total`` race candidates is scored (``entry`` as in final.json's race)."""

    def on_start(self, experiment: Experiment, run_dir: Path, resumed: bool) -> None:
        """The experiment is open (``resumed``: it holds an earlier run's trials)."""

    def on_recipe(self, line: str) -> None:
        """One line saying the data's training recipe of the trials and the final training
        (augmentation, label smoothing, warm-up), whether the table of recipes per dataset chose
        it (``auto``) and how to override it (:func:`~nasforge.experiment._recipe.recipe_line`);
        not for detection data."""

    def on_stage(self, stage: str, total: int) -> None:
        """A training of ``total`` epochs comes before the first trial: ``"supernet"``, the
        supernet a one-shot strategy (spos, darts, gdas) trains before its first proposal."""

    def on_plan(self, line: str) -> None:
        """One line saying how long the search expects to take: with a time budget
        (``config.time``) how it is split, up front and again once the first trial measured the
        costs (:mod:`nasforge._budget`); with a trial count, after the first trial, the time the
        rest should take."""

    def on_trial(self, experiment: Experiment, trial: Trial) -> None:
        """A trial finished (an experiment callback; called before the config's trackers)."""

    def on_epoch(self, stage: str, epoch: int, epochs: int, record: Mapping[str, Any]) -> None:
        """An epoch of a long training outside the trials ended: stage ``"supernet"`` (see
        :meth:`on_stage`) or ``"final"`` (the final training)."""

    def on_final_start(self, experiment: Experiment, epochs: int) -> None:
        """The final training starts, for ``epochs`` epochs (fewer than configured when a time
        budget leaves no room for them all)."""


def run_search(
    config: SearchConfig,
    *,
    resume: bool = False,
    hooks: SearchHooks | None = None,
    base: Path | None = None,
) -> SearchResult:
    """Run the search described by ``config`` and train the best architecture.

    Every component is built once (:func:`prepare_search`) and handed to :meth:`Experiment.run`.

    Args:
        config: the validated configuration (:func:`nasforge.config.search_config` makes one from
            a YAML file and command-line options).
        resume: continue the newest run of this name (or the given ``run_dir``).
        hooks: what to tell while the search runs (progress); see :class:`SearchHooks`.
        base: directory under which ``runs/`` is created (default: the working directory).

    With ``config.time`` the budget counts from this call (a resumed run gets it again): the
    search stops starting trials and cuts the running ones (the ``train`` estimator between steps,
    in time for its validation; others at their next report; a one-shot strategy's supernet
    training before its first proposal is not cut) when its share is spent,
    and the final training gets the rest as a time limit, with as many of its epochs as fit.
    """
    budget = TimeBudget(config, config.time) if config.time is not None else None
    run_dir = resolve_run_dir(config, resume=resume, base=base)
    ensure_writable_dir(run_dir, what="run directory", hint="choose another --run-dir (run_dir: in a config)")
    prepared = prepare_search(config)
    validation = None if isinstance(prepared.task, DetectionTask) else check_validation(prepared.task)
    cross_validate = validation is not None and validation.small and config.final.race > 1
    cost = 0.0  # what the final race adds to the final training, in its epochs
    if config.final.race > 1 and config.final.epochs > 0:
        cost = race_cost(config.final, prepared.task, config.final.race, cross_validate=cross_validate)
    if budget is not None and cost:
        budget.expect_race(cost)
    # a new run that fails before training anything leaves nothing behind (see _Before.remove_new)
    fresh = not resume and config.storage is None
    before = _Before.look(run_dir) if fresh else None
    exp = Experiment(
        config.run_name(),
        run_dir=run_dir,
        storage=config.storage,
        space=prepared.space,
        objectives=prepared.objective,
        seed=config.seed,
    )
    try:
        on_epoch = None if hooks is None else functools.partial(hooks.on_epoch, "supernet")
        strategy = prepared.build_strategy(exp, on_epoch)
        exp.set_strategy(strategy)  # restores a saved state
    except NasforgeError:
        if before is not None:
            before.remove_new()
        raise
    if not resume or not RunDir(run_dir).config.exists():
        atomic_write(RunDir(run_dir).config, config.to_yaml())
    if hooks is not None:
        hooks.on_start(exp, run_dir, resume)
        line = recipe_line(config, prepared.task, prepared.estimator)
        if line is not None:
            hooks.on_recipe(line)
        if validation is not None and validation.small:
            hooks.on_note(validation.line(race=config.final.race, folds=config.final.race_folds))
        pending = strategy.pending_epochs
        if pending:  # a one-shot strategy trains its supernet before the first trial
            hooks.on_stage("supernet", pending)
    say = hooks.on_plan if hooks is not None else (lambda line: None)
    callbacks: tuple[Callback, ...] = (hooks.on_trial,) if hooks is not None else ()
    if budget is None and config.trials is not None and hooks is not None:
        callbacks = (*callbacks, expectation(config, prepared, say, race_cost=cost))
    with contextlib.ExitStack() as tracking:  # trackers are closed when the loop ends, however it ends
        for tracker in prepared.trackers:
            tracking.enter_context(tracker)
        run_kwargs: dict[str, Any] = {
            "estimator": prepared.estimator,
            "scheduler": prepared.scheduler,
            "callbacks": (*callbacks, *prepared.trackers),
            "executor": prepared.executor,
            "max_screened": config.max_screened,
        }
        try:
            if budget is None:
                exp.run(n_trials=config.trials, timeout=config.timeout, **run_kwargs)
            else:
                budget.search(exp, prepared, run_kwargs, say)
        except InfeasibleError as exc:
            if before is None or exp.finished_count() > 0:
                raise
            tracking.close()
            before.remove_new()
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
    race: RaceResult | None = None
    if best is not None and config.final.epochs > 0 and turn:
        # on a shared database, the heartbeat shows other workers that the claimer is alive
        alive = (
            Heartbeat(exp.storage, exp.worker_id, exp.worker_index) if shared else contextlib.nullcontext()
        )
        with alive:
            if config.final.race > 1:
                race = _final_race(exp, prepared, budget, hooks, say, cross_validate=cross_validate)
                best = best if race is None else race.winner
            if budget is not None and (race is None or race.run is None):
                epochs, time_limit = budget.final(best, prepared, say, probe=_final_probe(prepared, best))
            final, spent = _train_final(
                exp, best, prepared, run_dir, epochs, time_limit, budget, hooks, race, validation
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
        race=race,
        validation=validation,
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


def _recipe(prepared: PreparedSearch, epochs: int) -> dict[str, Any]:
    """The final training's options for a training of ``epochs`` epochs, but for the epochs, seed,
    progress and time limit (race and final); the data's recipe by :func:`final_recipe`'s rule."""
    config = prepared.config
    f = config.final
    options: dict[str, Any] = {"batch_size": f.batch_size, "lr": f.lr, "weight_decay": f.weight_decay}
    if not isinstance(prepared.task, DetectionTask):  # detectors: AdamW, one-cycle, on the CPU
        options.update(optimizer=f.optimizer, schedule=f.schedule, device=config.device, amp=config.amp)
        options.update(final_recipe(config, prepared.task.name, epochs))
    return options


def _final_probe(prepared: PreparedSearch, best: Trial) -> Callable[[], float] | None:
    """What times the final training's epoch before it is planned
    (:func:`nasforge.estimate._final.epoch_seconds`, 16 steady mini-batches): only a final
    training with a fixed share of a time budget (``final: {time_share}``), which fills it with
    epochs; a classifier's (a detector's final training is planned on its trials' speed)."""
    if prepared.config.final.time_share is None or isinstance(prepared.task, DetectionTask):
        return None
    from nasforge.estimate._final import epoch_seconds

    def probe() -> float:
        options = _recipe(prepared, max(1, prepared.config.final.timed_epochs()))
        return epoch_seconds(
            best.architecture, prepared.task, seed=derive_seed(prepared.config.seed, 3), **options
        )

    return probe


def _final_race(
    exp: Experiment,
    prepared: PreparedSearch,
    budget: TimeBudget | None,
    hooks: SearchHooks | None,
    say: Callable[[str], None],
    *,
    cross_validate: bool,
) -> RaceResult | None:
    """Race the top ``final.race`` trials (:mod:`nasforge.experiment._race`); None when fewer
    than two completed (said in a note)."""
    f = prepared.config.final
    candidates = race_candidates(exp, f.race)
    note = None
    if len(candidates) < f.race:
        n = len(candidates)
        if n > 1:
            note = f"final race of {f.race}: only {n} distinct completed trials, racing them all"
        else:
            found = "only 1 distinct completed trial" if n else "no completed trial"
            note = f"final race of {f.race}: {found}, no race: the best trains alone"
        if hooks is not None:
            hooks.on_note(note)
    if len(candidates) < 2:
        return None
    epochs = f.race_length()
    reuse = reuses_winner(f, cross_validate=cross_validate)
    time_limit = None
    if budget is not None:
        scale = race_scale(f, prepared.task, cross_validate=cross_validate)
        final_after = 0 if reuse else budget.final_cap
        epochs, time_limit = budget.race(
            candidates, prepared, say, epochs=epochs, scale=scale, final_after=final_after
        )
    how = f"{f.race_folds}-fold cross-validation" if cross_validate else "holdout"
    if hooks is not None:
        hooks.on_race_start(candidates, epochs, how)
    result = run_race(
        candidates,
        prepared.task,
        metric=race_metric(prepared.config.objectives),
        epochs=epochs,
        recipe=_recipe(prepared, epochs),
        seed=derive_seed(exp.seed, 3),  # the final training's seed: the winner's run can be the final one
        folds=f.race_folds if cross_validate else None,
        time_limit=time_limit,
        keep_winner=reuse,
        objective=exp.objective.names[0],
        note=note,
        on_candidate=None if hooks is None else hooks.on_race_candidate,
    )
    if budget is not None:
        budget.race_done()
    return result


def _train_final(
    exp: Experiment,
    best: Trial,
    prepared: PreparedSearch,
    run_dir: Path,
    epochs: int,
    time_limit: float | None,
    budget: TimeBudget | None,
    hooks: SearchHooks | None,
    race: RaceResult | None = None,
    validation: ValidationCheck | None = None,
) -> tuple[TrainedNetwork, dict[str, Any] | None]:
    """Train ``best`` with the config's final budget (or take the race winner's training when it
    is the final one); write model.nasforge and final.json.

    Returns the model and, under a time budget, what was spent (also in final.json)."""
    config = prepared.config
    spent: dict[str, Any] | None = None
    f = config.final
    final: TrainedNetwork
    if race is not None and race.run is not None:  # trained once, in the race
        final = race.run.tested()
        if budget is not None:
            budget.final_epochs = int(final.metrics["epochs"])
            budget.time_limit = race.time_limit
    else:
        if hooks is not None:
            hooks.on_final_start(exp, epochs)
        options: dict[str, Any] = {
            "epochs": epochs,
            "seed": derive_seed(exp.seed, 3),
            "on_epoch": None if hooks is None else lambda e, n, m: hooks.on_epoch("final", e, n, m),
            "time_limit": time_limit,
            **_recipe(prepared, epochs),
        }
        final = best.train(prepared.task, **options)  # train_detector for a DetectionTask
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
        "test_report": getattr(final, "test_report", None),  # a detector has none: its mAP is in metrics
        "task_kind": final.task,
        # the settings, with the data's recipe as trained (final_recipe resolved "auto" and null)
        "final_training": {
            **f.model_dump(),
            **{k: final.metrics[k] for k in RECIPE_KEYS if k in final.metrics},
        },
        "task": {
            "name": final.task_name,
            "input_shape": list(final.input_shape),
            "class_names": list(final.class_names),
            "mean": list(final.mean),
            "std": list(final.std),
        },
        "model": RunDir.MODEL,
    }
    if validation is not None:
        payload["validation"] = validation.to_dict(race=f.race, folds=f.race_folds)
    if race is not None:
        payload["race"] = race.to_dict()
    if budget is not None:
        payload["time_budget"] = spent = budget.record(final)
    atomic_write(RunDir(run_dir).final, json.dumps(payload, indent=2) + "\n")
    return final, spent
