"""The Experiment: the record of a search, and ask/tell on it (as an Optuna study is).

The collaborators live next door: the loop :meth:`Experiment.run` runs (:mod:`._loop`), the
constraint screening before training (:mod:`._screening`), the coordination with other workers
of a shared database (:class:`._workers.Coordinator`), the trials in memory (:mod:`._ledger`) and
the run directory's files (:mod:`._rundir`).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nasforge._seeds import trial_seed
from nasforge.errors import ConfigError, NasforgeError, TrialFailed
from nasforge.estimate._base import Estimator
from nasforge.execute._base import Executor
from nasforge.experiment import _loop
from nasforge.experiment._components import Components
from nasforge.experiment._ledger import Ledger
from nasforge.experiment._loop import Callback, Evaluation
from nasforge.experiment._rundir import RunDir, write_run_files
from nasforge.experiment._storage import Storage, open_storage
from nasforge.experiment._workers import Coordinator
from nasforge.objective import MetricConstraint, Objective
from nasforge.space import Architecture, SearchSpace, space_from_config
from nasforge.strategy._base import Strategy
from nasforge.strategy._schedulers import Scheduler
from nasforge.trial import Trial, TrialState

__all__ = ["Callback", "Evaluation", "Experiment"]


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
        self.seed = _open_record(self.storage, name, space, self.objective, seed, read_only=read_only)
        self._ledger = Ledger(self.storage)
        self._components = Components(self)
        # several processes may search one database (workers); each registers itself
        self._workers = Coordinator(self, join=not read_only and self.storage.persistent)
        self.worker_id = self._workers.worker_id
        self.worker_index = self._workers.index
        self._workers.load()

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
        storage, name = RunDir(run_dir).open_storage(name)
        if space is None:
            space = space_from_config(storage.get_meta("space"))
        objective = Objective(
            storage.get_meta("objectives"), constraints=storage.get_meta("constraints") or ()
        )
        return cls(
            name, space=space, objectives=objective, storage=storage, run_dir=run_dir, read_only=read_only
        )

    # ------------------------------------------------------------------ the record
    @property
    def trials(self) -> list[Trial]:
        """All trials, by number."""
        return [self._ledger[n] for n in sorted(self._ledger.trials)]

    def finished_count(self) -> int:
        """Trials that count toward ``n_trials``: finished on their own (interrupted ones are
        retried) and evaluated (not screened out before training by a constraint)."""
        return self._ledger.finished

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

    def is_shared(self) -> bool:
        """Whether other live workers search this database too (looked up at most every 2 s)."""
        return self._workers.is_shared()

    def refresh(self, *, max_age: float = 0.2, force: bool = False) -> None:
        """Take in what other workers of this database did since the last look.

        New trials of other workers join the record (their architectures are not proposed again);
        trials they finished are told to the strategy and the scheduler; RUNNING trials of workers
        that are gone are marked interrupted and queued for a retry. Does nothing (and costs no
        database read) while this is the only worker, unless ``force`` (after a search on a
        shared database, to see the last trials of workers that have ended).
        """
        self._workers.refresh(max_age=max_age, force=force)

    # ------------------------------------------------------------------ strategy and scheduler
    @property
    def strategy(self) -> Strategy | None:
        """The attached strategy (:meth:`set_strategy`), or None."""
        return self._components.strategy

    @property
    def scheduler(self) -> Scheduler | None:
        """The attached early-stopping scheduler (:meth:`set_scheduler`), or None."""
        return self._components.scheduler

    def set_strategy(self, strategy: Strategy | str, **options: Any) -> Strategy:
        """Attach a strategy (an instance, or a registered name plus options), restoring saved state.

        A strategy created by name gets a seed derived from the experiment seed (and, for the second
        and later workers on one database, from the worker's index, so workers propose different
        architectures). When the storage holds the state of a strategy of the same type saved by
        this worker index, it is restored; finished trials it has not heard of are then told to it
        (all of them for a new strategy: a warm start).
        """
        return self._components.set_strategy(strategy, options)

    def set_scheduler(self, scheduler: Scheduler | str | None, **options: Any) -> Scheduler | None:
        """Attach an early-stopping scheduler (an instance, a registered name plus options, or None).

        Every value an estimator reports through ``ctx.report`` goes to it; when it says stop, the
        trial ends as PRUNED. Values stored with earlier trials are replayed into it before the
        next evaluation, so a resumed search continues with the same rungs. Strategies with their
        own scheduler (``hyperband``, ``bohb``, ...) attach it themselves.

        Example:
            >>> exp.set_scheduler("median", min_trials=5)  # doctest: +SKIP
        """
        return self._components.set_scheduler(scheduler, options)

    # ------------------------------------------------------------------ ask / tell
    def _check_writable(self) -> None:
        if self.read_only:
            raise NasforgeError(
                f"experiment '{self.name}' was opened read-only; open it without read_only to continue it"
            )

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
        self.strategy.pending = tuple(t.architecture for t in self._ledger.pending())
        seen = self._ledger.keys if self.dedup else Counter[str]()
        arch = None
        while self._ledger.retry and arch is None:
            arch = self._ledger.retry.popleft()
            if arch.key in seen:  # another worker took it up meanwhile
                arch = None
        if arch is None:
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
        trial = self._ledger.start(arch, self.worker_id)
        if self.dedup and self._workers.yields(trial):  # another worker started it a moment earlier
            return self._ask(max_duplicates, screen)
        return trial

    def _record_screened(self, arch: Architecture, metrics: Mapping[str, Any], reason: str) -> Trial:
        """Store a proposal screened out before evaluation as a finished FAIL trial, and tell it."""
        now = time.time()
        metrics = {k: _plain(v) for k, v in metrics.items()}
        trial = Trial(-1, arch, TrialState.FAIL, metrics, error=reason, started=now, finished=now)
        trial = dataclasses.replace(trial, screened=True, worker=self.worker_id)
        return self._after_tell(self._ledger.record(trial))  # proposed once: not proposed again

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
        current = self._ledger.get(number)
        if current is None:
            raise NasforgeError(f"trial {number} does not exist")
        if current.state.is_finished:
            raise NasforgeError(f"trial {number} is finished already ({current.state.value})")
        metrics = {k: _plain(v) for k, v in (metrics or {}).items()}
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        state, values, feasible = TrialState.COMPLETE, None, True
        if error is not None or interrupted:
            state = TrialState.FAIL
        elif pruned:
            state = TrialState.PRUNED
        else:
            try:
                values = self.objective.values(metrics)
            except TrialFailed as exc:  # no finite objective values
                state, error = TrialState.FAIL, str(exc)
            else:
                feasible = self.objective.feasible(metrics)
        done = self._ledger.finish(
            number,
            state,
            metrics=metrics,
            values=values,
            feasible=feasible,
            error=error,
            interrupted=interrupted,
        )
        return self._after_tell(done)

    def _after_tell(self, done: Trial) -> Trial:
        """A trial has finished (its record is stored): tell the scheduler and the strategy, save
        the strategy's state, refresh the run files."""
        self._components.heard(done)
        if self.storage.persistent:
            self._components.save()
        if self.run_dir is not None:
            write_run_files(self)
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
                constraint before training (default
                :data:`~nasforge.experiment._screening.MAX_SCREENED_IN_ROW`, 200). If no trial of
                the experiment was ever trained, that is an :class:`InfeasibleError`; otherwise
                the search stops with a warning and keeps what it found.

        Returns:
            self, for chaining.

        Raises:
            InfeasibleError: before any trial, when a ``params`` / ``flops`` upper bound is below
                the smallest network of the space (:meth:`SearchSpace.metric_floor`); or when
                ``max_screened`` proposals in a row violated the constraints and no trial was
                trained yet. The message names the constraint and the smallest value seen.
        """
        _loop.run(
            self,
            strategy,
            estimator,
            n_trials=n_trials,
            timeout=timeout,
            hard_timeout=hard_timeout,
            callbacks=callbacks,
            strategy_options=strategy_options,
            scheduler=scheduler,
            scheduler_options=scheduler_options,
            executor=executor,
            executor_options=executor_options,
            max_screened=max_screened,
        )
        return self

    def evaluate(self, trial: Trial, estimator: Estimator) -> Evaluation:
        """Run ``estimator`` on a RUNNING trial in this process without telling the result
        (:meth:`tell` it next).

        Reported values go to the storage and the scheduler, which may stop the trial. A crash
        is caught and returned as the evaluation's ``error``; Ctrl-C marks the trial interrupted
        and propagates. :meth:`run` is ``evaluate`` then ``tell``; call them yourself to look at
        the metrics in between (a benchmark that stops before exceeding a time budget).
        """
        return _loop.evaluate(self, trial, estimator)

    def _rebind(self, input_shape: Sequence[int], num_classes: int) -> None:
        """Bind the space to the task's input (before a run): every architecture is made again in it."""
        self.space = self.space.bind(input_shape, num_classes)
        self._ledger.remake(self.space)
        self._components.rebind()


def _open_record(
    storage: Storage,
    name: str,
    space: SearchSpace,
    objective: Objective,
    seed: int | None,
    *,
    read_only: bool,
) -> int:
    """The experiment's seed. A stored experiment must have been started with this seed (or
    none), space and objectives; a new one stores them (a random seed when ``seed`` is None)."""
    stored_seed = storage.get_meta("seed")
    if read_only and stored_seed is None:
        raise ConfigError(f"there is no experiment '{name}' in {storage.describe()} to read")
    if stored_seed is not None and seed is not None and int(stored_seed) != seed:
        raise ConfigError(
            f"experiment '{name}' was started with seed {stored_seed}, not {seed}; "
            "resume with the same seed (or none), or start a new experiment"
        )
    stored_space = storage.get_meta("space")
    if stored_space is not None and stored_space != space.to_dict():
        raise ConfigError(
            f"experiment '{name}' in {storage.describe()} was started with another search space; "
            "resume it with the same space, or start a new experiment"
        )
    stored_objectives = storage.get_meta("objectives")
    if stored_objectives is not None and stored_objectives != objective.specs:
        raise ConfigError(
            f"experiment '{name}' optimises {stored_objectives}, not {objective.specs}; "
            "resume it with the same objectives, or start a new experiment"
        )
    if stored_seed is not None:
        return int(stored_seed)
    seed = secrets.randbits(31) if seed is None else int(seed)
    storage.set_meta("seed", seed)
    storage.set_meta("space", space.to_dict())
    storage.set_meta("objectives", objective.specs)
    storage.set_meta("constraints", [str(c) for c in objective.constraints])
    return seed


def _plain(value: Any) -> Any:
    """Metrics as plain JSON numbers (numpy / torch scalars unwrapped)."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value
