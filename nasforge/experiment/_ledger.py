"""An experiment's trials: written to its storage and kept in memory, with the counts ask and
tell need kept up to date as trials change (so both stay O(1) in long benchmark runs)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from nasforge.experiment._storage import Storage
from nasforge.space import Architecture, SearchSpace
from nasforge.trial import Trial, TrialState

__all__ = ["Ledger", "counts"]


def counts(trial: Trial) -> bool:
    """Whether a trial counts toward ``n_trials``: finished on its own (an interrupted one is
    retried) and evaluated (a screened one was ruled out before training)."""
    return trial.state.is_finished and not trial.interrupted and not trial.screened


class Ledger:
    """The trials by number, and what follows from them. Every change of a trial this process
    makes goes through :meth:`start`, :meth:`report`, :meth:`finish` or :meth:`record`, which
    write it to the storage first (committed before anyone hears of it), then here.

    Attributes:
        storage: where the trials are written.
        trials: every trial the experiment knows, by number.
        keys: how many trials hold each architecture key, interrupted ones not counted (running
            ones are): an architecture whose key is here is not proposed again.
        finished: the trials that count toward ``n_trials`` (:func:`counts`).
        running: trials asked in this process and not yet told.
        others: RUNNING trials of other live workers of the database.
        retry: architectures of interrupted trials, evaluated again before the strategy is asked.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.trials: dict[int, Trial] = {}
        self.keys: Counter[str] = Counter()
        self.finished = 0
        self.running: set[int] = set()
        self.others: set[int] = set()
        self.retry: deque[Architecture] = deque()

    def __getitem__(self, number: int) -> Trial:
        return self.trials[number]

    def get(self, number: int) -> Trial | None:
        return self.trials.get(number)

    # ------------------------------------------------------------------ writes
    def start(self, arch: Architecture, worker: str) -> Trial:
        """A new RUNNING trial of ``arch``, run by ``worker`` in this process."""
        started = time.time()
        number = self.storage.create_trial(arch, started, worker=worker)
        trial = Trial(number, arch, TrialState.RUNNING, started=started, worker=worker)
        self.put(trial)
        self.running.add(number)
        return trial

    def report(self, number: int, step: int, value: float) -> None:
        """An intermediate value of a running trial."""
        self.storage.report(number, step, value)
        current = self.trials[number]
        self.put(dataclasses.replace(current, intermediate={**current.intermediate, step: value}))

    def finish(
        self,
        number: int,
        state: TrialState,
        *,
        metrics: Mapping[str, Any] | None = None,
        values: tuple[float, ...] | None = None,
        feasible: bool = True,
        error: str | None = None,
        interrupted: bool = False,
    ) -> Trial:
        """The end of RUNNING trial ``number`` (its intermediate values kept); returns the record.

        A trial :meth:`Experiment.evaluate` flagged as screened stays so if it fails."""
        current = self.trials[number]
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
        self.storage.finish_trial(done)
        self.put(done)
        return done

    def record(self, trial: Trial) -> Trial:
        """A trial that is finished already (screened out before evaluation), in one write;
        returns it with its number."""
        done = dataclasses.replace(trial, number=self.storage.record_trial(trial))
        self.put(done)
        return done

    # ------------------------------------------------------------------ memory
    def put(self, trial: Trial) -> None:
        """Add a trial or replace the record of its number here, keeping the counts in step."""
        old = self.trials.get(trial.number)
        if old is not None:
            self.finished -= counts(old)
            if not old.interrupted:
                self.release(old.architecture.key)
        self.finished += counts(trial)
        if not trial.interrupted:
            self.keys[trial.architecture.key] += 1
        self.trials[trial.number] = trial
        if trial.state.is_finished:
            self.running.discard(trial.number)
            self.others.discard(trial.number)

    def release(self, key: str) -> None:
        """One trial fewer holds ``key``."""
        self.keys[key] -= 1
        if self.keys[key] <= 0:
            del self.keys[key]

    def remake(self, space: SearchSpace) -> None:
        """Make every architecture again in ``space`` (the experiment's space, bound to a task)."""
        for n, t in self.trials.items():
            arch = space.make(t.architecture.params, check_constraints=False)
            self.trials[n] = dataclasses.replace(t, architecture=arch)
        self.retry = deque(space.make(a.params, check_constraints=False) for a in self.retry)

    def pending(self) -> list[Trial]:
        """The trials running now, here and on other workers, by number."""
        return [self.trials[n] for n in sorted(self.running | self.others)]
