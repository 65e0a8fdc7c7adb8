"""The Experiment: the record of a search and the ask → evaluate → tell loop."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import secrets
import signal
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nasforge._interrupts import remember_interrupts
from nasforge._seeds import derive_seed, strategy_seed, trial_seed
from nasforge.errors import ConfigError, InfeasibleError, NasforgeError, StorageError, TrialFailed
from nasforge.estimate._base import Estimator
from nasforge.execute._base import Executor, TrialJob, run_job
from nasforge.experiment._rundir import RunDir, write_run_files
from nasforge.experiment._storage import Storage, open_storage
from nasforge.experiment._trial import SCREENED, Trial, TrialState
from nasforge.experiment._workers import Heartbeat, new_worker_id
from nasforge.experiment._workers import register as register_worker
from nasforge.experiment._workers import workers as list_workers
from nasforge.objective import MetricConstraint, Objective
from nasforge.registry import ESTIMATORS, SCHEDULERS, STRATEGIES
from nasforge.space import Architecture, SearchSpace, space_from_config
from nasforge.strategy._base import Strategy
from nasforge.strategy._schedulers import Scheduler

#: metrics computed from the built network alone, so their constraints are checked before training
CHEAP_METRICS = frozenset({"params", "flops"})
#: default of ``run(max_screened=...)``: a strategy that proposes this many screened-out
#: architectures in a row has nothing feasible left. A screened chain CNN costs its count on the
#: meta device plus one trial record in SQLite (measured 0.1-0.3 s each on 2 busy cores, most of it
#: Optuna writing the ~25 parameters), so 200 give up within a minute; a feasible region of 1% of
#: the space is still hit in 200 uniform proposals with 87% probability.
MAX_SCREENED_IN_ROW = 200

__all__ = ["Evaluation", "Experiment"]

log = logging.getLogger("nasforge")

Callback = Callable[["Experiment", Trial], None]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What one estimator call produced, before it is told (:meth:`Experiment.evaluate`).

    Attributes:
        metrics: the estimator's metrics; for a pruned trial, those it reported last (its cost so
            far included) plus ``step``.
        pruned: the scheduler stopped the trial.
        error: the failure reason (a message or the exception) of a failed call, else None.
    """

    metrics: Mapping[str, Any]
    pruned: bool = False
    error: str | BaseException | None = None


class Experiment:
    """A named search: a space, objectives, stored trials, and the loop that adds to them.

    Re-opening an experiment on the same storage (or run directory) resumes it: finished trials are
    loaded, trials left RUNNING by a killed process are marked failed and their architectures are
    evaluated again first, and the strategy continues from its saved state.

    Args:
        name: experiment name (the study name in the database).
        space: the search space.
        objectives: metric names (``"-latency_ms"`` to minimise) or an :class:`Objective`.
        constraints: metric constraints such as ``"params <= 100000"`` (ignored if ``objectives``
            is an Objective).
        storage: None (in memory, or SQLite in ``run_dir`` if given), a database URL such as
            ``"sqlite:///runs/a.db"``, or a :class:`Storage`.
        run_dir: directory for the database, leaderboard and best architecture; created if needed.
        seed: experiment seed (strategies created by name and trial seeds derive from it); a
            resumed experiment keeps its original seed.
        dedup: skip architectures that were evaluated or are running already.
        read_only: only read the stored trials (``nasforge show`` while a search runs): trials
            left RUNNING stay RUNNING, and ask/tell/run are refused.

    Example:
        >>> import nasforge as nf
        >>> exp = nf.Experiment("demo", space=nf.spaces.ChainCNN(depth=(1, 3)), seed=0)
    """

    def __init__(
        self,
        name: str = "nasforge",
        *,
        space: SearchSpace,
        objectives: Sequence[str] | str | Objective = ("val_accuracy",),
        constraints: Sequence[str | MetricConstraint] = (),
        storage: str | Storage | None = None,
        run_dir: str | Path | None = None,
        seed: int | None = None,
        dedup: bool = True,
        read_only: bool = False,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.name = name
        self.space = space
        self.objective = (
            objectives
            if isinstance(objectives, Objective)
            else Objective(objectives, constraints=constraints)
        )
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if storage is None:
                storage = RunDir(self.run_dir).database_url
        self.storage = open_storage(storage)
        self.storage.open(name, self.objective.directions)
        self.dedup = dedup
        self.read_only = read_only
        self.strategy: Strategy | None = None
        self.scheduler: Scheduler | None = None
        self._scheduler_from_strategy = False
        self._scheduler_synced = False
        self._told: set[int] = set()
        # Incremental views of the trials, so ask/tell stay O(1) for long benchmark runs.
        self._keys: Counter[str] = Counter()  # keys of trials that count (not interrupted), running included
        self._n_finished = 0
        self._running: set[int] = set()  # trials asked in this process and not yet told
        self._deadline: float | None = None  # monotonic time at which run(hard_timeout=True) stops trials
        self._interrupted: list[int] = []  # signals received during run() (see _remember_interrupts)

        stored_seed = self.storage.get_meta("seed")
        if read_only and stored_seed is None:
            raise ConfigError(f"there is no experiment '{name}' in {self.storage.describe()} to read")
        if stored_seed is not None and seed is not None and int(stored_seed) != seed:
            raise ConfigError(
                f"experiment '{name}' was started with seed {stored_seed}, not {seed}; "
                "resume with the same seed (or none), or start a new experiment"
            )
        stored_space = self.storage.get_meta("space")
        if stored_space is not None and stored_space != space.to_dict():
            raise ConfigError(
                f"experiment '{name}' in {self.storage.describe()} was started with another search space; "
                "resume it with the same space, or start a new experiment"
            )
        stored_objectives = self.storage.get_meta("objectives")
        if stored_objectives is not None and stored_objectives != self.objective.specs:
            raise ConfigError(
                f"experiment '{name}' optimises {stored_objectives}, not {self.objective.specs}; "
                "resume it with the same objectives, or start a new experiment"
            )
        if stored_seed is None:
            seed = secrets.randbits(31) if seed is None else int(seed)
            self.storage.set_meta("seed", seed)
            self.storage.set_meta("space", space.to_dict())
            self.storage.set_meta("objectives", self.objective.specs)
            self.storage.set_meta("constraints", [str(c) for c in self.objective.constraints])
        self.seed = int(stored_seed if stored_seed is not None else seed)  # type: ignore[arg-type]

        self._trials: dict[int, Trial] = {}
        self._retry: deque[Architecture] = deque()
        # several processes may search one database (workers); each registers itself
        self.worker_id = new_worker_id()
        self.worker_index = 0
        if not read_only and self.storage.persistent:
            self.worker_index = register_worker(self.storage, self.worker_id)
        self._others: set[int] = set()  # RUNNING trials of other live workers
        self._shared_checked = -math.inf  # monotonic time of the last look for other workers
        self._shared = False
        self._refreshed = -math.inf
        self._load()

    # ------------------------------------------------------------------ loading / resuming
    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        name: str | None = None,
        *,
        space: SearchSpace | None = None,
        read_only: bool = False,
    ) -> Experiment:
        """Open the experiment stored in ``run_dir``.

        Args:
            run_dir: the run directory.
            name: the experiment name, needed only when the database holds several.
            space: the search space; by default rebuilt from the stored description (registered
                spaces only).
            read_only: inspect without touching anything, safe while a search is running; without
                it, trials left RUNNING are taken as interrupted (their process is gone).
        """
        path = Path(run_dir)
        storage, name = RunDir(path).open_storage(name)
        if space is None:
            space = space_from_config(storage.get_meta("space"))
        objective = Objective(
            storage.get_meta("objectives"), constraints=storage.get_meta("constraints") or ()
        )
        return cls(
            name, space=space, objectives=objective, storage=storage, run_dir=path, read_only=read_only
        )

    def _live_others(self) -> set[str]:
        """Ids of the other workers of this database that may still be running trials."""
        if not self.storage.persistent:
            return set()
        now = time.time()
        return {w.id for w in list_workers(self.storage).values() if w.id != self.worker_id and w.alive(now)}

    def _load(self) -> None:
        records = self.storage.load_trials(self.space)
        live = self._live_others()
        for rec in records:
            self._trials[rec.number] = rec
        for rec in records:
            if rec.state is not TrialState.RUNNING:
                continue
            if rec.worker is not None and rec.worker in live:  # another worker is evaluating it
                self._others.add(rec.number)
            elif not self.read_only:  # its process is gone
                self._finish(
                    self._trials[rec.number],
                    TrialState.FAIL,
                    error="interrupted: the search process stopped while this trial was running",
                    interrupted=True,
                )
        self._keys = Counter(t.architecture.key for t in self._trials.values() if not t.interrupted)
        self._n_finished = sum(1 for t in self._trials.values() if _counts(t))
        done_keys = set(self._keys)
        queued: set[str] = set()
        for t in self.trials:
            key = t.architecture.key
            if t.interrupted and key not in done_keys and key not in queued:
                self._retry.append(t.architecture)
                queued.add(key)

    # ------------------------------------------------------------------ record access
    @property
    def trials(self) -> list[Trial]:
        """All trials, by number."""
        return [self._trials[n] for n in sorted(self._trials)]

    def finished_count(self) -> int:
        """Trials that count toward ``n_trials``: finished on their own (interrupted ones are
        retried) and evaluated (not screened out before training by a constraint)."""
        return self._n_finished

    def best(self) -> Trial | None:
        """The feasible completed trial with the best primary objective, or None."""
        return self.objective.best(self.trials)

    def pareto_front(self) -> list[Trial]:
        """Non-dominated feasible completed trials."""
        return self.objective.pareto_front(self.trials)

    def leaderboard(self, top: int | None = None) -> list[Trial]:
        """Completed trials, best first (infeasible ones last)."""
        done = [t for t in self.trials if t.values is not None]
        done.sort(key=lambda t: (self.objective.score(t), -t.number), reverse=True)
        return done[:top] if top is not None else done

    def trial_seed(self, number: int) -> int:
        """The seed handed to the estimator for trial ``number``."""
        return trial_seed(self.seed, number)

    # ------------------------------------------------------------------ ask / tell
    def _check_writable(self) -> None:
        if self.read_only:
            raise NasforgeError(
                f"experiment '{self.name}' was opened read-only; open it without read_only to continue it"
            )

    def set_strategy(self, strategy: Strategy | str, **options: Any) -> Strategy:
        """Attach a strategy (an instance, or a registered name plus options), restoring saved state.

        A strategy created by name gets a seed derived from the experiment seed (and, for the second
        and later workers on one database, from the worker's index, so workers propose different
        architectures). When the storage holds the state of a strategy of the same type saved by
        this worker index, it is restored; finished trials it has not heard of are then told to it
        (all of them for a new strategy: a warm start).
        """
        if isinstance(strategy, str):
            options.setdefault("seed", strategy_seed(self.seed, self.worker_index))
            strategy = STRATEGIES.create(strategy, **options)
        elif options:
            raise ConfigError("strategy options go with a strategy name, not an instance")
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"strategy must be a Strategy or a registered name, got {type(strategy).__name__}"
            )
        strategy.setup(self.space, self.objective)
        if self.run_dir is not None:
            strategy.set_run_dir(self.run_dir)
        saved = self.storage.get_meta(self._strategy_key())
        self._told = set()
        if isinstance(saved, Mapping) and saved.get("type") == type(strategy).__name__:
            strategy.load_state_dict(saved["state"])
            self._told = set(saved.get("told", []))
        self.strategy = strategy
        for t in self.trials:
            if t.state.is_finished and t.number not in self._told:
                strategy.tell(t)
                self._told.add(t.number)
        self._save_strategy()
        own = getattr(strategy, "scheduler", None)
        if isinstance(own, Scheduler):  # a multi-fidelity strategy brings its early stopping
            self.set_scheduler(own)
            self._scheduler_from_strategy = True
        elif self._scheduler_from_strategy:  # the previous strategy's scheduler goes with it
            self.set_scheduler(None)
        return strategy

    def set_scheduler(self, scheduler: Scheduler | str | None, **options: Any) -> Scheduler | None:
        """Attach an early-stopping scheduler (an instance, a registered name plus options, or None).

        Every value an estimator reports through ``ctx.report`` goes to it; when it says stop, the
        trial ends as PRUNED. Values stored with earlier trials are replayed into it before the
        next evaluation, so a resumed search continues with the same rungs. Strategies with their
        own scheduler (``hyperband``, ``bohb``, ...) attach it themselves.

        Example:
            >>> exp.set_scheduler("median", min_trials=5)  # doctest: +SKIP
        """
        if isinstance(scheduler, str):
            if SCHEDULERS.canonical_name(scheduler) == "hyperband":
                options.setdefault("seed", derive_seed(self.seed, 3))
            scheduler = SCHEDULERS.create(scheduler, **options)
        elif options:
            raise ConfigError("scheduler options go with a scheduler name, not an instance")
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise ConfigError(
                f"scheduler must be a Scheduler, a registered name or None, got {type(scheduler).__name__}"
            )
        if scheduler is not None:
            scheduler.setup(self.objective)
        self.scheduler = scheduler
        self._scheduler_from_strategy = False
        self._scheduler_synced = False
        return scheduler

    def _sync_scheduler(self, estimator: Estimator) -> None:
        """Before the first evaluation: tell the scheduler the full budget and replay stored values."""
        if self.scheduler is None or self._scheduler_synced:
            return
        self.scheduler.bind(getattr(estimator, "max_step", None))
        self.scheduler.replay([t for t in self.trials if t.intermediate or t.state.is_finished])
        self._scheduler_synced = True

    def _strategy_key(self) -> str:
        return "strategy" if self.worker_index == 0 else f"strategy.{self.worker_index}"

    def _save_strategy(self) -> None:
        """Store the strategy's state (after every tell when storage outlives the process)."""
        if self.strategy is not None:
            self.storage.set_meta(
                self._strategy_key(),
                {
                    "type": type(self.strategy).__name__,
                    "state": self.strategy.state_dict(),
                    "told": sorted(self._told),
                },
            )

    def is_shared(self) -> bool:
        """Whether other live workers search this database too (looked up at most every 2 s)."""
        if not self.storage.persistent:
            return False
        now = time.monotonic()
        if now - self._shared_checked > 2.0:
            self._shared = bool(self._live_others()) or bool(self._others)
            self._shared_checked = now
        return self._shared

    def refresh(self, *, max_age: float = 0.2, force: bool = False) -> None:
        """Take in what other workers of this database did since the last look.

        New trials of other workers join the record (their architectures are not proposed again);
        trials they finished are told to the strategy and the scheduler; RUNNING trials of workers
        that are gone are marked interrupted and queued for a retry. Does nothing (and costs no
        database read) while this is the only worker, unless ``force`` (after a search on a
        shared database, to see the last trials of workers that have ended).
        """
        if not force and (not self.is_shared() or time.monotonic() - self._refreshed < max_age):
            return
        self._refreshed = time.monotonic()
        live = self._live_others()
        for rec in self.storage.load_trials(self.space):
            n = rec.number
            known = self._trials.get(n)
            if n in self._running or (
                known is not None and known.state is rec.state and known.interrupted == rec.interrupted
            ):
                if rec.state is TrialState.RUNNING and n not in self._running and rec.worker not in live:
                    self._take_over(n)
                continue
            trial = rec
            key = trial.architecture.key
            if known is None and not rec.interrupted:
                self._keys[key] += 1
            elif known is not None and rec.interrupted and not known.interrupted:
                self._keys[key] -= 1
                if self._keys[key] <= 0:
                    del self._keys[key]
            self._trials[n] = trial
            if rec.state is TrialState.RUNNING:
                self._others.add(n)
                if rec.worker not in live:
                    self._take_over(n)
                continue
            self._others.discard(n)
            if rec.interrupted:
                if self.dedup and key not in self._keys:
                    self._retry.append(trial.architecture)
                continue
            if not trial.screened:
                self._n_finished += 1
            if self.scheduler is not None and self._scheduler_synced:
                self.scheduler.finished(trial)
            if self.strategy is not None and n not in self._told:
                self.strategy.tell(trial)
                self._told.add(n)

    def _take_over(self, number: int) -> None:
        """A RUNNING trial of a worker that is gone: mark it interrupted and queue it for a retry."""
        trial = self._trials[number]
        try:
            self._finish(
                trial,
                TrialState.FAIL,
                error="interrupted: the worker evaluating this trial stopped",
                interrupted=True,
            )
        except StorageError:  # another worker marked it first
            return
        self._others.discard(number)
        if trial.architecture.key not in self._keys:
            self._retry.append(trial.architecture)

    def ask(self, *, max_duplicates: int = 200) -> Trial | None:
        """Start a trial: the next architecture from the retry queue or the strategy.

        Returns:
            the RUNNING trial, or None when the strategy has nothing left (or proposed only
            duplicates ``max_duplicates`` times in a row).
        """
        return self._ask(max_duplicates)

    def _ask(
        self,
        max_duplicates: int = 200,
        screen: Callable[[Architecture], tuple[dict[str, Any], str] | None] | None = None,
    ) -> Trial | None:
        """:meth:`ask`; with ``screen``, an architecture it finds infeasible is recorded at once
        as a finished screened trial (one storage write instead of a RUNNING trial then its end:
        screening a whole space's worth of proposals stays cheap) and returned."""
        self._check_writable()
        if self.strategy is None:
            raise NasforgeError("no strategy: call set_strategy() or run(strategy=...) first")
        self.refresh()  # the loop looked a moment ago; a race left after that is settled below
        pending = sorted(self._running | self._others)
        self.strategy.pending = tuple(self._trials[n].architecture for n in pending)
        arch = None
        while self._retry and arch is None:
            arch = self._retry.popleft()
            if self.dedup and arch.key in self._keys:  # another worker took it up meanwhile
                arch = None
        if arch is None:
            seen = self._keys if self.dedup else Counter()
            for _ in range(max_duplicates):
                arch = self.strategy.ask()
                if arch is None or arch.key not in seen:
                    break
            else:
                arch = None
            if arch is None:
                return None
        infeasible = screen(arch) if screen is not None else None
        if infeasible is not None:
            return self._record_screened(arch, *infeasible)
        started = time.time()
        number = self.storage.create_trial(arch, started, worker=self.worker_id)
        trial = Trial(number, arch, TrialState.RUNNING, started=started, worker=self.worker_id)
        self._trials[number] = trial
        self._running.add(number)
        self._keys[arch.key] += 1
        if self.dedup and self.is_shared():
            first = self._raced(number, arch)
            if first is not None:  # another worker started the same architecture a moment earlier
                self._finish(
                    trial,
                    TrialState.FAIL,
                    error=f"not evaluated: trial {first} of another worker evaluates this architecture",
                    interrupted=True,
                )
                self._keys[arch.key] += 1  # it is taken, by the other trial
                return self._ask(max_duplicates, screen)
        return trial

    def _record_screened(self, arch: Architecture, metrics: Mapping[str, Any], reason: str) -> Trial:
        """Store a proposal screened out before evaluation as a finished FAIL trial, and tell it."""
        now = time.time()
        metrics = {k: _plain(v) for k, v in metrics.items()}
        trial = Trial(
            -1, arch, TrialState.FAIL, metrics, error=reason, started=now, finished=now, screened=True,
            worker=self.worker_id,
        )  # fmt: skip
        done = dataclasses.replace(trial, number=self.storage.record_trial(trial))
        self._trials[done.number] = done
        self._keys[arch.key] += 1  # proposed once: dedup does not propose it again
        return self._after_tell(done)

    def _raced(self, number: int, arch: Architecture) -> int | None:
        """The lower-numbered trial of the same architecture another worker created meanwhile, if any.

        Workers check after creating a trial: of two that picked the same architecture at the same
        moment, the later trial yields, so no architecture is evaluated twice.
        """
        params = dict(arch.params)
        for rec in self.storage.load_trials(self.space):
            if rec.number < number and not rec.interrupted and dict(rec.params) == params:
                return rec.number
        return None

    def tell(
        self,
        trial: Trial | int,
        metrics: Mapping[str, Any] | None = None,
        *,
        error: str | BaseException | None = None,
        pruned: bool = False,
        interrupted: bool = False,
    ) -> Trial:
        """Finish a running trial with its metrics, or as failed (``error``) or pruned.

        Metrics that do not give finite objective values fail the trial. Returns the finished record.
        """
        self._check_writable()
        number = trial if isinstance(trial, int) else trial.number
        if number not in self._trials:
            raise NasforgeError(f"trial {number} does not exist")
        current = self._trials[number]
        if current.state.is_finished:
            raise NasforgeError(f"trial {number} is finished already ({current.state.value})")
        metrics = {k: _plain(v) for k, v in (metrics or {}).items()}
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if error is not None or interrupted:
            done = self._finish(
                current, TrialState.FAIL, metrics=metrics, error=error, interrupted=interrupted
            )
        elif pruned:
            done = self._finish(current, TrialState.PRUNED, metrics=metrics)
        else:
            try:
                values = self.objective.values(metrics)
            except TrialFailed as exc:
                done = self._finish(current, TrialState.FAIL, metrics=metrics, error=str(exc))
            else:
                done = self._finish(
                    current,
                    TrialState.COMPLETE,
                    metrics=metrics,
                    values=values,
                    feasible=self.objective.feasible(metrics),
                )
        return self._after_tell(done)

    def _after_tell(self, done: Trial) -> Trial:
        """A trial has finished (its record is stored): tell the scheduler and the strategy, save
        the strategy's state, refresh the run files."""
        if self.scheduler is not None and self._scheduler_synced:
            self.scheduler.finished(done)
        if self.strategy is not None:
            self.strategy.tell(done)
            self._told.add(done.number)
            if self.storage.persistent:
                self._save_strategy()
        if self.run_dir is not None:
            write_run_files(self)
        return done

    def _finish(
        self,
        trial: Trial,
        state: TrialState,
        *,
        metrics: Mapping[str, Any] | None = None,
        values: tuple[float, ...] | None = None,
        feasible: bool = True,
        error: str | None = None,
        interrupted: bool = False,
    ) -> Trial:
        current = self._trials[trial.number]  # with the intermediate values reported meanwhile
        done = dataclasses.replace(
            current,
            state=state,
            metrics=dict(metrics or {}),
            values=values,
            feasible=feasible,
            error=error,
            finished=time.time(),
            interrupted=interrupted,
            screened=current.screened and state is TrialState.FAIL and not interrupted,
        )
        self.storage.finish_trial(done)  # committed before anyone hears of it
        self._trials[trial.number] = done
        self._running.discard(trial.number)
        self._others.discard(trial.number)
        if interrupted:
            self._keys[trial.architecture.key] -= 1
            if self._keys[trial.architecture.key] <= 0:
                del self._keys[trial.architecture.key]
        elif not done.screened:
            self._n_finished += 1
        return done

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        strategy: Strategy | str | None = None,
        estimator: Estimator | str | None = None,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        hard_timeout: bool = False,
        callbacks: Sequence[Callback] = (),
        strategy_options: Mapping[str, Any] | None = None,
        scheduler: Scheduler | str | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        executor: Executor | str | None = None,
        executor_options: Mapping[str, Any] | None = None,
        max_screened: int | None = None,
    ) -> Experiment:
        """Ask, evaluate and tell until the budget is spent.

        Args:
            strategy: a Strategy or a registered name (``"evolution"``); defaults to the attached one.
            estimator: an Estimator (or a registered name of one that needs no arguments).
            n_trials: total finished trials the experiment should hold (trials of earlier, resumed
                runs count; trials screened out by a constraint before evaluation do not); None
                for no limit.
            timeout: stop starting new trials after this many seconds of this call.
            hard_timeout: also stop the running trial when ``timeout`` passes, at its next
                ``ctx.report`` (it ends PRUNED with the metrics it reached), so the search spends
                no more than ``timeout`` plus one epoch: for comparisons at equal wall clock.
            callbacks: ``fn(experiment, trial)`` called after each finished trial.
            strategy_options: options for a strategy given by name.
            scheduler: an early-stopping scheduler (a :class:`Scheduler` or a registered name:
                ``"median"``, ``"successive_halving"``, ``"hyperband"``, ``"learning_curve"``);
                default: the attached one, or the strategy's own.
            scheduler_options: options for a scheduler given by name.
            executor: where trials run: ``"inprocess"`` (default, one at a time), ``"process"``
                (one process per trial: isolation, time and memory limits, several at once) or
                ``"ray"`` (a Ray cluster), or an :class:`~nasforge.execute.Executor`. With several
                trials at once the strategy is asked while others run (it sees them as
                ``strategy.pending``; duplicates of running architectures are skipped).
            executor_options: options for an executor given by name (``concurrency``,
                ``time_limit``, ``memory_limit_mb``, ``address``, ...).
            max_screened: stop after this many proposals in a row were screened out by a
                constraint before training (default :data:`MAX_SCREENED_IN_ROW`, 200). If no
                trial of the experiment was ever trained, that is an :class:`InfeasibleError`;
                otherwise the search stops with a warning and keeps what it found.

        Returns:
            self, for chaining.

        Raises:
            InfeasibleError: before any trial, when a ``params`` / ``flops`` upper bound is below
                the smallest network of the space (:meth:`SearchSpace.metric_floor`); or when
                ``max_screened`` proposals in a row violated the constraints and no trial was
                trained yet. The message names the constraint and the smallest value seen.
        """
        if n_trials is not None and (
            isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0
        ):
            raise ConfigError(f"n_trials must be a non-negative integer, got {n_trials=}")
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout=}")
        if max_screened is None:
            max_screened = MAX_SCREENED_IN_ROW
        if isinstance(max_screened, bool) or not isinstance(max_screened, int) or max_screened < 1:
            raise ConfigError(f"max_screened must be a positive integer, got {max_screened=}")
        if isinstance(estimator, str):
            estimator = ESTIMATORS.create(estimator)
        if not isinstance(estimator, Estimator):
            raise ConfigError(f"run() needs an Estimator, got {type(estimator).__name__}")
        task = getattr(estimator, "task", None)
        if task is not None and (self.space.input_shape, self.space.num_classes) != (
            task.input_shape,
            task.num_classes,
        ):
            self._rebind(task.input_shape, task.num_classes)
        if strategy is not None:
            self.set_strategy(strategy, **(strategy_options or {}))
        elif self.strategy is None:
            raise ConfigError("run() needs a strategy, e.g. strategy='evolution'")
        if task is not None and self.strategy is not None:
            self.strategy.set_task(task)
        if scheduler is not None:
            self.set_scheduler(scheduler, **(scheduler_options or {}))
        elif scheduler_options:
            raise ConfigError("scheduler_options need a scheduler name")
        impossible = impossible_constraint(self.space, self.objective, estimator)
        if impossible is not None:
            raise InfeasibleError(impossible)

        from nasforge.execute import make_executor

        runner = make_executor(executor, **(executor_options or {}))
        start = time.monotonic()
        self._deadline = start + timeout if (hard_timeout and timeout is not None) else None
        beat = (
            Heartbeat(self.storage, self.worker_id, self.worker_index)
            if self.storage.persistent
            else contextlib.nullcontext()
        )
        try:
            runner.start()
            with beat, remember_interrupts() as self._interrupted:
                self._loop(runner, estimator, n_trials, timeout, start, callbacks, max_screened)
        except KeyboardInterrupt:
            # the executor's trials, and one asked but not yet handed to it when the signal came
            for number in sorted({*runner.stop_all(), *self._running}):
                if not self._trials[number].state.is_finished:
                    self.tell(number, error=self._interrupt_reason(), interrupted=True)
            self._settle_running()
            raise
        finally:
            runner.shutdown()
            self._deadline = None
            if not self.storage.persistent:
                self._save_strategy()
        return self

    def _settle_running(self) -> None:
        """After a stop, mark interrupted every trial of this worker that the database still holds
        as RUNNING: one whose insert committed just before the signal, before this process
        registered it, or whose final write the signal cut (the Ctrl-C test found one left RUNNING
        once in a full-suite run). A resume evaluates them again."""
        for rec in self.storage.load_trials(self.space):
            # a trial whose row was inserted but not yet its worker attribute has none; on a
            # database of its own, that trial can only be this process's
            mine = rec.worker == self.worker_id or (rec.worker is None and not self.is_shared())
            if rec.state is TrialState.RUNNING and mine:
                self.storage.finish_trial(
                    dataclasses.replace(
                        rec, state=TrialState.FAIL, error=self._interrupt_reason(), interrupted=True,
                        finished=time.time(),
                    ),
                )  # fmt: skip

    def _loop(
        self,
        runner: Executor,
        estimator: Estimator,
        n_trials: int | None,
        timeout: float | None,
        start: float,
        callbacks: Sequence[Callback],
        max_screened: int,
    ) -> None:
        """Keep the executor's slots full (ask), and tell each trial that ends, until the budget is spent."""
        exhausted = False
        streak = _ScreenedStreak(self.objective.constraints)
        while True:
            if self._interrupted:  # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
                raise KeyboardInterrupt
            while not exhausted and len(runner.running) < runner.concurrency:
                self.refresh()
                busy = len(runner.running) + len(self._others)  # other workers' trials count too
                if n_trials is not None and self._n_finished + busy >= n_trials:
                    break
                if timeout is not None and time.monotonic() - start >= timeout:
                    break
                trial = self._ask(screen=lambda arch: self._infeasible_before_training(arch, estimator))
                if trial is None:
                    exhausted = True
                    break
                if trial.screened:  # costs no evaluation: told at once, the slot stays free
                    for cb in callbacks:
                        cb(self, trial)
                    streak.add(trial.metrics)
                    if streak.count >= max_screened:
                        if not any(_trained(t) for t in self._trials.values()):
                            raise InfeasibleError(streak.message(before_any=True))
                        log.warning("stopping: %s", streak.message(before_any=False))
                        exhausted = True
                    continue
                streak = _ScreenedStreak(self.objective.constraints)
                self._sync_scheduler(estimator)
                runner.submit(self._job(trial, estimator), self._decide)
            if not runner.running:
                if self._others and not exhausted and (n_trials is None or self._n_finished < n_trials):
                    time.sleep(0.5)  # the budget waits on other workers' trials: see how they end
                    if timeout is None or time.monotonic() - start < timeout:
                        continue
                return
            for outcome in runner.wait(1.0):
                done = self.tell(outcome.number, outcome.metrics, error=outcome.error, pruned=outcome.pruned)
                for cb in callbacks:
                    cb(self, done)

    def _job(self, trial: Trial, estimator: Estimator) -> TrialJob:
        limit = getattr(estimator, "max_step", None)
        milestones = {}
        if self.scheduler is not None and isinstance(limit, int):
            milestones[limit] = self.scheduler.milestones(trial.number, limit)
        return TrialJob(
            trial.number,
            trial.architecture,
            self.trial_seed(trial.number),
            estimator,
            run_dir=self.run_dir,
            milestones=milestones,
        )

    def _decide(self, number: int, step: int, value: float) -> str | None:
        """A running trial reported ``value`` at ``step``: record it; say why it must stop, or None."""
        current = self._trials.get(number)
        if current is None or current.state.is_finished:
            return "the trial was stopped"
        self.storage.report(number, step, value)
        intermediate = {**current.intermediate, step: value}
        self._trials[number] = dataclasses.replace(current, intermediate=intermediate)
        if self.scheduler is not None and self.scheduler.observe(number, step, value):
            return f"stopped by {self.scheduler.name} at step {step} (value {value:.6g})"
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return f"stopped at step {step}: the search's time budget is spent"
        return None

    def _interrupt_reason(self) -> str:
        """The error of a trial a stop cut short: SIGTERM (``kill``, a scheduler) or Ctrl-C."""
        if self._interrupted and self._interrupted[0] == signal.SIGTERM:
            return "interrupted: stopped by SIGTERM"
        return "interrupted: stopped by the user (Ctrl-C)"

    def evaluate(self, trial: Trial, estimator: Estimator) -> Evaluation:
        """Run ``estimator`` on a RUNNING trial in this process without telling the result
        (:meth:`tell` it next).

        Reported values go to the storage and the scheduler, which may stop the trial. A crash
        is caught and returned as the evaluation's ``error``; Ctrl-C marks the trial interrupted
        and propagates. :meth:`run` is ``evaluate`` then ``tell``; call them yourself to look at
        the metrics in between (a benchmark that stops before exceeding a time budget).
        """
        self._check_writable()
        infeasible = self._infeasible_before_training(trial.architecture, estimator)
        if infeasible is not None:
            current = self._trials.get(trial.number)
            if current is not None and not current.state.is_finished:  # told with the error: screened
                self._trials[trial.number] = dataclasses.replace(current, screened=True)
            return Evaluation(infeasible[0], error=infeasible[1])
        self._sync_scheduler(estimator)
        number = trial.number
        try:
            out = run_job(self._job(trial, estimator), lambda step, value: self._decide(number, step, value))
        except KeyboardInterrupt:
            self.tell(trial, error=self._interrupt_reason(), interrupted=True)
            raise
        return Evaluation(out.metrics, pruned=out.pruned, error=out.error)

    def _infeasible_before_training(
        self, arch: Architecture, estimator: Estimator
    ) -> tuple[dict[str, Any], str] | None:
        """Check constraints on cheap metrics before the estimator runs.

        The estimator answers what it knows without evaluating (:meth:`Estimator.cheap_metrics`:
        a table's latency, a measured latency); ``params`` and ``flops`` are counted on the
        network built on the ``"meta"`` device (no memory, no compute) at the estimator's width.
        A violated constraint fails the trial (screened) with the values found, costing no
        evaluation. Returns ``(metrics, reason)`` for an infeasible architecture, else None.
        """
        names = {c.metric for c in self.objective.constraints}
        if not names:
            return None
        metrics: dict[str, Any] = {}
        try:
            metrics.update(estimator.cheap_metrics(arch, frozenset(names)))
        except Exception:  # the estimator cannot tell: the constraints are checked on its results
            log.debug("cheap_metrics failed for %s", arch.key, exc_info=True)
        wanted = (names & CHEAP_METRICS) - metrics.keys()
        if wanted and self.space.input_shape is not None and self.space.num_classes is not None:
            import torch

            from nasforge.hardware import count_flops, count_params

            width = getattr(estimator, "width", 1.0)
            try:
                with torch.random.fork_rng(devices=[]):
                    model = arch.build(device="meta", width=width)
                if "params" in wanted:
                    metrics["params"] = count_params(model)
                if "flops" in wanted:
                    metrics["flops"] = count_flops(model, tuple(self.space.input_shape))
            except Exception:  # a space that cannot build on meta: the constraint is checked after training
                log.debug("cannot build %s on the meta device", arch.key, exc_info=True)
        violated = [
            str(c) for c in self.objective.constraints if c.metric in metrics and not c.holds(metrics)
        ]
        if not violated:
            return None
        found = ", ".join(f"{k} = {v:,}" for k, v in metrics.items())
        return metrics, f"{SCREENED}: violates {', '.join(violated)} ({found}); not trained"

    def _rebind(self, input_shape: Sequence[int], num_classes: int) -> None:
        self.space = self.space.bind(input_shape, num_classes)
        for n, t in list(self._trials.items()):
            arch = self.space.make(t.architecture.params, check_constraints=False)
            self._trials[n] = dataclasses.replace(t, architecture=arch)
        self._retry = deque(self.space.make(a.params, check_constraints=False) for a in self._retry)
        if self.strategy is not None:  # keep its progress, hand it the bound space
            state = self.strategy.state_dict()
            self.strategy.setup(self.space, self.objective)
            self.strategy.load_state_dict(state)


class _ScreenedStreak:
    """Proposals screened out in a row: how often each constraint was violated, and the value
    closest to its bound (the smallest ``params`` seen under ``params <= 10``)."""

    def __init__(self, constraints: Sequence[MetricConstraint]) -> None:
        self.constraints = list(constraints)
        self.count = 0
        self.violations: Counter[MetricConstraint] = Counter()
        self.closest: dict[MetricConstraint, float] = {}

    def add(self, metrics: Mapping[str, Any]) -> None:
        self.count += 1
        for c in self.constraints:
            value = metrics.get(c.metric)
            if value is None or c.holds(metrics):
                continue
            self.violations[c] += 1
            if isinstance(value, (int, float)) and math.isfinite(value):
                upper = c.op in ("<", "<=")
                old = self.closest.get(c)
                if old is None or (value < old if upper else value > old):
                    self.closest[c] = float(value)

    def message(self, *, before_any: bool) -> str:
        """``no architecture satisfies params <= 10 (smallest params seen 20): ...``"""
        always = [c for c in self.constraints if self.violations[c] == self.count]
        shown = always or [c for c in self.constraints if self.violations[c]]
        parts = []
        for c in shown:
            notes = [] if always else [f"violated by {self.violations[c]}"]
            if c in self.closest:
                what = "smallest" if c.op in ("<", "<=") else "largest"
                notes.append(f"{what} {c.metric} seen {_number(self.closest[c])}")
            parts.append(f"{c} ({', '.join(notes)})" if notes else str(c))
        which = " and ".join(parts)
        head = f"no architecture satisfies {which}" if always else f"no architecture satisfies all of {which}"
        when = "before any trial was trained" if before_any else "since the last trained trial"
        it = "it" if len(shown) == 1 else "them" if always else "one of them each"
        return (
            f"{head}: the last {self.count} proposals in a row violated {it} "
            f"{when}; loosen the constraint or narrow the space (max_screened sets how many proposals to try)"
        )


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.4g}"


def _trained(trial: Trial) -> bool:
    """Whether a trial got past the constraint screening to the estimator (or is there now)."""
    return not trial.screened and not (trial.interrupted and trial.error and "not evaluated" in trial.error)


def impossible_constraint(space: SearchSpace, objective: Objective, estimator: Estimator) -> str | None:
    """Why a ``params`` / ``flops`` upper bound cannot be met by any architecture of ``space``, or None.

    Uses :meth:`SearchSpace.metric_floor`, a value no architecture goes below, at the estimator's
    width; None when the space cannot tell, or when the estimator measures the metric itself
    (its :meth:`~Estimator.cheap_metrics` answers for it), or when the bound can be met.
    """
    width = getattr(estimator, "width", 1.0)
    for c in objective.constraints:
        if c.metric not in CHEAP_METRICS or c.op not in ("<", "<="):
            continue
        try:
            floor = space.metric_floor(c.metric, width=width)
        except NasforgeError:
            floor = None
        if floor is None or c.holds({c.metric: floor}):
            continue
        if type(estimator).cheap_metrics is not Estimator.cheap_metrics:
            import numpy as np

            try:  # an estimator of its own may count the metric another way
                probe = space.sample(np.random.default_rng(0))
                if c.metric in estimator.cheap_metrics(probe, frozenset({c.metric})):
                    continue
            except Exception:
                log.debug("cannot probe cheap_metrics of %s", type(estimator).__name__, exc_info=True)
        task = ""
        if space.input_shape is not None and space.num_classes is not None:
            shape = "x".join(str(d) for d in space.input_shape)
            task = f" for {shape} inputs and {space.num_classes} classes"
        unit = "parameters" if c.metric == "params" else "FLOPs"
        return (
            f"constraint {c} cannot be met: every network of the {space.name} space{task} has at "
            f"least {_number(floor)} {unit}; raise the bound, or change the space or dataset"
        )
    return None


def _counts(trial: Trial) -> bool:
    """Whether a finished trial counts toward ``n_trials`` (an interrupted one is retried, a
    screened one was never evaluated)."""
    return trial.state.is_finished and not trial.interrupted and not trial.screened


def _plain(value: Any) -> Any:
    """Metrics as plain JSON numbers (numpy / torch scalars unwrapped)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
