"""The strategy and the scheduler an experiment drives: attached, told each finished trial once,
and the strategy's state saved with the trials so a resumed search continues it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nasforge._seeds import derive_seed, strategy_seed
from nasforge.errors import ConfigError
from nasforge.registry import SCHEDULERS, STRATEGIES
from nasforge.strategy._base import Strategy
from nasforge.strategy._schedulers import Scheduler
from nasforge.trial import Trial

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment

__all__ = ["Components"]


class Components:
    """An experiment's strategy and scheduler (see :meth:`Experiment.set_strategy` and
    :meth:`Experiment.set_scheduler`).

    The strategy's state is stored under the meta key ``strategy`` (``strategy.<i>`` for worker
    ``i`` > 0 of a shared database) as its type, its ``state_dict()`` and the numbers of the trials
    it was told; the scheduler hears of finished trials once it is synced (:meth:`sync`, before
    the first evaluation).
    """

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.strategy: Strategy | None = None
        self.scheduler: Scheduler | None = None
        self.told: set[int] = set()  # trials the strategy has heard of
        self.synced = False  # the scheduler has its budget and the stored values
        self._scheduler_from_strategy = False

    def set_strategy(self, strategy: Strategy | str, options: dict[str, Any]) -> Strategy:
        exp = self.exp
        if isinstance(strategy, str):
            options.setdefault("seed", strategy_seed(exp.seed, exp.worker_index))
            strategy = STRATEGIES.create(strategy, **options)
        elif options:
            raise ConfigError("strategy options go with a strategy name, not an instance")
        if not isinstance(strategy, Strategy):
            raise ConfigError(
                f"strategy must be a Strategy or a registered name, got {type(strategy).__name__}"
            )
        strategy.setup(exp.space, exp.objective)
        if exp.run_dir is not None:
            strategy.set_run_dir(exp.run_dir)
        saved = exp.storage.get_meta(self._key())
        self.told = set()
        if isinstance(saved, Mapping) and saved.get("type") == type(strategy).__name__:
            strategy.load_state_dict(saved["state"])
            self.told = set(saved.get("told", []))
        self.strategy = strategy
        for t in exp.trials:
            if t.state.is_finished and t.number not in self.told:
                strategy.tell(t)
                self.told.add(t.number)
        self.save()
        own = strategy.scheduler
        if isinstance(own, Scheduler):  # a multi-fidelity strategy brings its early stopping
            self.set_scheduler(own, {})
            self._scheduler_from_strategy = True
        elif self._scheduler_from_strategy:  # the previous strategy's scheduler goes with it
            self.set_scheduler(None, {})
        return strategy

    def set_scheduler(self, scheduler: Scheduler | str | None, options: dict[str, Any]) -> Scheduler | None:
        if isinstance(scheduler, str):
            if SCHEDULERS.canonical_name(scheduler) == "hyperband":
                options.setdefault("seed", derive_seed(self.exp.seed, 3))
            scheduler = SCHEDULERS.create(scheduler, **options)
        elif options:
            raise ConfigError("scheduler options go with a scheduler name, not an instance")
        if scheduler is not None and not isinstance(scheduler, Scheduler):
            raise ConfigError(
                f"scheduler must be a Scheduler, a registered name or None, got {type(scheduler).__name__}"
            )
        if scheduler is not None:
            scheduler.setup(self.exp.objective)
        self.scheduler = scheduler
        self._scheduler_from_strategy = False
        self.synced = False
        return scheduler

    def sync(self, max_step: int | None) -> None:
        """Before the first evaluation: tell the scheduler the full budget and replay stored values."""
        if self.scheduler is None or self.synced:
            return
        self.scheduler.bind(max_step)
        self.scheduler.replay([t for t in self.exp.trials if t.intermediate or t.state.is_finished])
        self.synced = True

    def heard(self, trial: Trial) -> None:
        """A finished trial: tell the scheduler (once synced) and the strategy, if it has not heard."""
        if self.scheduler is not None and self.synced:
            self.scheduler.finished(trial)
        if self.strategy is not None and trial.number not in self.told:
            self.strategy.tell(trial)
            self.told.add(trial.number)

    def rebind(self) -> None:
        """The experiment's space was bound to a task: hand it to the strategy, keeping its progress."""
        if self.strategy is not None:
            state = self.strategy.state_dict()
            self.strategy.setup(self.exp.space, self.exp.objective)
            self.strategy.load_state_dict(state)

    def save(self) -> None:
        """Store the strategy's state (after every tell when storage outlives the process)."""
        if self.strategy is not None:
            state = {"type": type(self.strategy).__name__, "state": self.strategy.state_dict()}
            self.exp.storage.set_meta(self._key(), {**state, "told": sorted(self.told)})

    def _key(self) -> str:
        index = self.exp.worker_index
        return "strategy" if index == 0 else f"strategy.{index}"
