"""The ask-and-tell Strategy interface.

Call order, driven by :class:`nasforge.Experiment`:

1. ``setup(space, objective)`` once, before anything else; ``set_run_dir(path)`` when the
   experiment has a run directory, ``set_task(task)`` when the estimator works on a dataset
   (optional hooks for strategies that keep files or look at data).
2. ``load_state_dict(state)`` when resuming a stored run (instead of starting fresh), followed by
   ``tell`` for every trial that finished after that state was saved.
3. Any interleaving of ``ask()`` and ``tell(trial)``: ``ask`` may be called while earlier trials
   are still running; ``tell`` receives every finished trial (COMPLETE, PRUNED or FAIL), including
   trials the strategy did not ask for (warm start, retried architectures). When trials run
   concurrently (a ``process`` or ``ray`` executor), :attr:`Strategy.pending` holds the
   architectures still running at each ``ask``.

``ask`` returns ``None`` when the strategy has nothing more to propose (a finished grid). Returning an
architecture that was evaluated already is allowed: the experiment skips duplicates when
deduplication is on and asks again.

What the experiment and the CLI read from or set on a strategy is declared on :class:`Strategy`
(:attr:`~Strategy.scheduler`, :attr:`~Strategy.pending_epochs`, :attr:`~Strategy.on_epoch`), with a
default that means "nothing of the kind", so no caller has to guess with ``getattr``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError, NasforgeError

if TYPE_CHECKING:
    from pathlib import Path

    from nasforge.data import Task
    from nasforge.objective import Objective
    from nasforge.space import Architecture, SearchSpace
    from nasforge.strategy._schedulers import Scheduler
    from nasforge.trial import Trial

__all__ = ["EpochHook", "Strategy"]

#: ``on_epoch(epoch, epochs, record)``: one epoch (1-based) of ``epochs`` done, with its metrics
EpochHook = Callable[[int, int, dict[str, Any]], None]


class Strategy(ABC):
    """Base class of search strategies.

    Subclasses implement :meth:`ask`; :meth:`tell`, :meth:`on_setup` are optional hooks, and
    stateful strategies extend :meth:`state_dict` / :meth:`load_state_dict` (JSON values only).

    Args:
        seed: seeds the strategy's own ``numpy.random.Generator``; None draws fresh entropy.

    Attributes:
        pending: architectures asked for and still being evaluated, set by the experiment before
            every :meth:`ask` (empty when trials run one at a time). The experiment never starts a
            second trial of a running architecture; a model-based strategy may use them to spread
            its proposals.
        scheduler: the early-stopping scheduler this strategy brings, or None (the default). A
            multi-fidelity strategy (successive halving, Hyperband, BOHB) sets it in its
            constructor; :meth:`Experiment.set_strategy <nasforge.experiment.Experiment.set_strategy>`
            attaches it to the experiment, and detaches it with the strategy.
        on_epoch: hook ``on_epoch(epoch, epochs, record)`` (:data:`EpochHook`) called after every
            epoch of training the strategy does itself before proposing (the DARTS / GDAS / SPOS
            supernet); the CLI sets it to draw progress. None (the default): nobody listens.
            Strategies that train nothing never call it.
    """

    scheduler: Scheduler | None = None
    on_epoch: EpochHook | None = None

    def __init__(self, *, seed: int | None = None) -> None:
        self.seed = seed
        self.pending: tuple[Architecture, ...] = ()
        self._space: SearchSpace | None = None
        self._objective: Objective | None = None
        self.rng = np.random.default_rng(seed)

    @property
    def pending_epochs(self) -> int | None:
        """Epochs of training still to do before the first proposal (a one-shot strategy's
        supernet), for progress displays; None (the default) when there are none."""
        return None

    @property
    def space(self) -> SearchSpace:
        if self._space is None:
            raise NasforgeError(f"{type(self).__name__}.setup(space, objective) must be called before use")
        return self._space

    @property
    def objective(self) -> Objective:
        if self._objective is None:
            raise NasforgeError(f"{type(self).__name__}.setup(space, objective) must be called before use")
        return self._objective

    def setup(self, space: SearchSpace, objective: Objective) -> None:
        """Attach the space and objective; called once before the first ask."""
        self._space = space
        self._objective = objective
        self.on_setup()

    def on_setup(self) -> None:  # noqa: B027 - optional hook
        """Hook called at the end of :meth:`setup` (prepare per-space state here)."""

    def set_task(self, task: Task) -> None:  # noqa: B027 - optional hook
        """Hook: the task the experiment's estimator trains on (for strategies that look at data,
        such as zero-cost proxies). Called by :meth:`Experiment.run` when the estimator has one."""

    def set_run_dir(self, run_dir: Path) -> None:  # noqa: B027 - optional hook
        """Hook: the experiment's run directory, for strategies that keep files (a trained
        supernet). Called by :meth:`Experiment.set_strategy` when the experiment has one."""

    @abstractmethod
    def ask(self) -> Architecture | None:
        """Propose the next architecture to evaluate, or None when there is nothing left."""

    def tell(self, trial: Trial) -> None:  # noqa: B027 - optional hook
        """Receive a finished trial. Default: ignore it."""

    def restore_arch(self, params: dict[str, Any]) -> Architecture:
        """An architecture of the space from params saved in a state (valid when saved, so its
        constraints are not measured again)."""
        return self.space.make(params, check_constraints=False)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, enough to continue exactly where it stopped."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (after :meth:`setup`)."""
        try:
            self.rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot restore {type(self).__name__} state: {exc}") from None
