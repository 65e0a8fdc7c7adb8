"""The search loop behind :meth:`Experiment.run`: ask → evaluate → tell, and nothing else.

:class:`SearchLoop` keeps the executor's slots full (ask), tells each trial that ends, and stops
when the budget is spent, the strategy has nothing left, proposals keep breaking the constraints
(:class:`~nasforge.experiment._screening.ScreenedStreak`), or on Ctrl-C / SIGTERM (the running
trials are then marked interrupted, so a resume evaluates them again). :func:`evaluate` is one
evaluation in this process, for a caller that asks and tells itself.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nasforge._interrupts import remember_interrupts
from nasforge.errors import ConfigError, InfeasibleError
from nasforge.estimate._base import Estimator
from nasforge.execute import make_executor
from nasforge.execute._base import Executor, TrialJob, run_job
from nasforge.experiment import _screening
from nasforge.experiment._screening import (
    ScreenedStreak,
    impossible_constraint,
    infeasible_before_training,
    trained,
)
from nasforge.registry import ESTIMATORS
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._schedulers import Scheduler
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment

__all__ = ["Callback", "Evaluation", "SearchLoop", "decide", "evaluate", "interrupt_reason", "job", "run"]

log = logging.getLogger("nasforge")

#: ``fn(experiment, trial)``, called after each finished trial
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


def run(
    exp: Experiment,
    strategy: Strategy | str | None,
    estimator: Estimator | str | None,
    *,
    n_trials: int | None,
    timeout: float | None,
    hard_timeout: bool,
    callbacks: Sequence[Callback],
    strategy_options: Mapping[str, Any] | None,
    scheduler: Scheduler | str | None,
    scheduler_options: Mapping[str, Any] | None,
    executor: Executor | str | None,
    executor_options: Mapping[str, Any] | None,
    max_screened: int | None,
) -> None:
    """:meth:`Experiment.run`: check the arguments, attach the components, run the loop."""
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0):
        raise ConfigError(f"n_trials must be a non-negative integer, got {n_trials=}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout=}")
    if max_screened is None:
        max_screened = _screening.MAX_SCREENED_IN_ROW
    if isinstance(max_screened, bool) or not isinstance(max_screened, int) or max_screened < 1:
        raise ConfigError(f"max_screened must be a positive integer, got {max_screened=}")
    if isinstance(estimator, str):
        estimator = ESTIMATORS.create(estimator)
    if not isinstance(estimator, Estimator):
        raise ConfigError(f"run() needs an Estimator, got {type(estimator).__name__}")
    task = estimator.task
    if task is not None and (exp.space.input_shape, exp.space.num_classes) != (
        task.input_shape,
        task.num_classes,
    ):
        exp._rebind(task.input_shape, task.num_classes)
    if strategy is not None:
        exp.set_strategy(strategy, **(strategy_options or {}))
    elif exp.strategy is None:
        raise ConfigError("run() needs a strategy, e.g. strategy='evolution'")
    if task is not None and exp.strategy is not None:
        exp.strategy.set_task(task)
    if scheduler is not None:
        exp.set_scheduler(scheduler, **(scheduler_options or {}))
    elif scheduler_options:
        raise ConfigError("scheduler_options need a scheduler name")
    impossible = impossible_constraint(exp.space, exp.objective, estimator)
    if impossible is not None:
        raise InfeasibleError(impossible)

    runner = make_executor(executor, **(executor_options or {}))
    loop = SearchLoop(
        exp,
        estimator,
        runner,
        n_trials=n_trials,
        timeout=timeout,
        hard_timeout=hard_timeout,
        callbacks=callbacks,
        max_screened=max_screened,
    )
    loop.run()


class SearchLoop:
    """One :meth:`Experiment.run`: the executor's slots kept full until the budget is spent.

    Args:
        exp: the experiment, with its strategy (and scheduler) attached.
        estimator: what evaluates each trial.
        runner: the executor; started and shut down by :meth:`run`.
        n_trials, timeout, hard_timeout, callbacks, max_screened: as :meth:`Experiment.run` takes them.
    """

    def __init__(
        self,
        exp: Experiment,
        estimator: Estimator,
        runner: Executor,
        *,
        n_trials: int | None,
        timeout: float | None,
        hard_timeout: bool,
        callbacks: Sequence[Callback],
        max_screened: int,
    ) -> None:
        self.exp = exp
        self.estimator = estimator
        self.runner = runner
        self.n_trials = n_trials
        self.timeout = timeout
        self.callbacks = list(callbacks)
        self.max_screened = max_screened
        self.start = time.monotonic()
        #: monotonic time at which running trials are stopped (``hard_timeout``), or None
        self.deadline = self.start + timeout if (hard_timeout and timeout is not None) else None
        self.interrupted: list[int] = []  # signals received during the loop (see remember_interrupts)

    def run(self) -> None:
        """Run the loop; on Ctrl-C / SIGTERM mark this worker's running trials interrupted and re-raise."""
        exp, runner = self.exp, self.runner
        try:
            runner.start()
            with exp._workers.heartbeat(), remember_interrupts() as self.interrupted:
                self._loop()
        except KeyboardInterrupt:
            # the executor's trials, and one asked but not yet handed to it when the signal came
            for number in sorted({*runner.stop_all(), *exp._ledger.running}):
                if not exp._ledger[number].state.is_finished:
                    exp.tell(number, error=interrupt_reason(self.interrupted), interrupted=True)
            self._settle_running()
            raise
        finally:
            runner.shutdown()
            if not exp.storage.persistent:
                exp._components.save()

    def _loop(self) -> None:
        """Keep the executor's slots full (ask), and tell each trial that ends, until the budget is spent."""
        exp, runner, ledger = self.exp, self.runner, self.exp._ledger
        exhausted = False
        streak = ScreenedStreak(exp.objective.constraints)
        while True:
            if self.interrupted:  # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
                raise KeyboardInterrupt
            while not exhausted and len(runner.running) < runner.concurrency:
                exp.refresh()
                busy = len(runner.running) + len(ledger.others)  # other workers' trials count too
                if self.n_trials is not None and ledger.finished + busy >= self.n_trials:
                    break
                if self.timeout is not None and time.monotonic() - self.start >= self.timeout:
                    break
                trial = exp._ask(screen=self._screen)
                if trial is None:
                    exhausted = True
                    break
                if trial.screened:  # costs no evaluation: told at once, the slot stays free
                    for cb in self.callbacks:
                        cb(exp, trial)
                    streak.add(trial.metrics)
                    if streak.count >= self.max_screened:
                        if not any(trained(t) for t in exp.trials):
                            raise InfeasibleError(streak.message(before_any=True))
                        log.warning("stopping: %s", streak.message(before_any=False))
                        exhausted = True
                    continue
                streak = ScreenedStreak(exp.objective.constraints)
                exp._components.sync(self.estimator.max_step)
                runner.submit(job(exp, trial, self.estimator, deadline=self.deadline), self._decide)
            if not runner.running:
                if (
                    ledger.others
                    and not exhausted
                    and (self.n_trials is None or ledger.finished < self.n_trials)
                ):
                    time.sleep(0.5)  # the budget waits on other workers' trials: see how they end
                    if self.timeout is None or time.monotonic() - self.start < self.timeout:
                        continue
                return
            for outcome in runner.wait(1.0):
                done = exp.tell(outcome.number, outcome.metrics, error=outcome.error, pruned=outcome.pruned)
                for cb in self.callbacks:
                    cb(exp, done)

    def _screen(self, arch: Architecture) -> tuple[dict[str, Any], str] | None:
        return infeasible_before_training(self.exp.space, self.exp.objective, arch, self.estimator)

    def _decide(self, number: int, step: int, value: float) -> str | None:
        return decide(self.exp, number, step, value, deadline=self.deadline)

    def _settle_running(self) -> None:
        """After a stop, mark interrupted every trial of this worker that the database still holds
        as RUNNING: one whose insert committed just before the signal, before this process
        registered it, or whose final write the signal cut (the Ctrl-C test found one left RUNNING
        once in a full-suite run). A resume evaluates them again."""
        exp = self.exp
        for trial in exp.storage.load_trials(exp.space):
            # a trial whose row was inserted but not yet its worker attribute has none; on a
            # database of its own, that trial can only be this process's
            mine = trial.worker == exp.worker_id or (trial.worker is None and not exp.is_shared())
            if trial.state is TrialState.RUNNING and mine:
                exp.storage.finish_trial(
                    dataclasses.replace(
                        trial,
                        state=TrialState.FAIL,
                        error=interrupt_reason(self.interrupted),
                        interrupted=True,
                        finished=time.time(),
                    )
                )


def job(exp: Experiment, trial: Trial, estimator: Estimator, *, deadline: float | None = None) -> TrialJob:
    """The executor's job for ``trial``: its architecture, seed, the scheduler's milestones and
    the search's hard deadline (``deadline``, a :func:`time.monotonic` value, handed to the job as
    wall-clock time so another process on this host reads it the same)."""
    limit = estimator.max_step
    milestones = {}
    if exp.scheduler is not None and isinstance(limit, int):
        milestones[limit] = exp.scheduler.milestones(trial.number, limit)
    return TrialJob(
        trial.number,
        trial.architecture,
        exp.trial_seed(trial.number),
        estimator,
        run_dir=exp.run_dir,
        milestones=milestones,
        deadline=None if deadline is None else time.time() + (deadline - time.monotonic()),
    )


def decide(
    exp: Experiment, number: int, step: int, value: float, *, deadline: float | None = None
) -> str | None:
    """A running trial reported ``value`` at ``step``: record it; say why it must stop, or None."""
    current = exp._ledger.get(number)
    if current is None or current.state.is_finished:
        return "the trial was stopped"
    exp._ledger.report(number, step, value)
    if exp.scheduler is not None and exp.scheduler.observe(number, step, value):
        return f"stopped by {exp.scheduler.name} at step {step} (value {value:.6g})"
    if deadline is not None and time.monotonic() >= deadline:
        return f"stopped at step {step}: the search's time budget is spent"
    return None


def interrupt_reason(signals: Sequence[int] = ()) -> str:
    """The error of a trial a stop cut short: SIGTERM (``kill``, a scheduler) or Ctrl-C."""
    if signals and signals[0] == signal.SIGTERM:
        return "interrupted: stopped by SIGTERM"
    return "interrupted: stopped by the user (Ctrl-C)"


def evaluate(exp: Experiment, trial: Trial, estimator: Estimator) -> Evaluation:
    """:meth:`Experiment.evaluate`: the screening, then the estimator in this process."""
    exp._check_writable()
    infeasible = infeasible_before_training(exp.space, exp.objective, trial.architecture, estimator)
    if infeasible is not None:
        current = exp._ledger.get(trial.number)
        if current is not None and not current.state.is_finished:  # told with the error: screened
            exp._ledger.put(dataclasses.replace(current, screened=True))
        return Evaluation(infeasible[0], error=infeasible[1])
    exp._components.sync(estimator.max_step)
    number = trial.number
    try:
        out = run_job(job(exp, trial, estimator), lambda step, value: decide(exp, number, step, value))
    except KeyboardInterrupt:
        exp.tell(trial, error=interrupt_reason(), interrupted=True)
        raise
    return Evaluation(out.metrics, pruned=out.pruned, error=out.error)
