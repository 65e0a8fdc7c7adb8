"""Conformance tests every trial storage must pass (the contract of
:class:`~nasforge.experiment.Storage`).

Use it by subclassing :class:`StorageConformance` in a test module and providing a
``make_storage`` fixture that returns ``factory() -> Storage``; every call must give a new, empty
storage, and, for a ``persistent`` one, ``reopen(storage)`` (the ``reopen_storage`` fixture,
default: the same object) a second handle on the same trials, as another process would open it::

    class TestMine(StorageConformance):
        @pytest.fixture
        def make_storage(self, tmp_path):
            return lambda: MyStorage(tmp_path / f"{uuid.uuid4().hex}.db")
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from nasforge.errors import StorageError
from nasforge.experiment import Storage
from nasforge.space import Choice, IntRange, SearchSpace
from nasforge.trial import Trial, TrialState

__all__ = ["StorageConformance"]

Factory = Callable[[], Storage]
Reopen = Callable[[Storage], Storage]


def _space() -> SearchSpace:
    return SearchSpace({"depth": IntRange(1, 4), "op": Choice(["conv", "pool"])})


def _opened(make: Factory, name: str = "exp") -> Storage:
    storage = make()
    storage.open(name, ["maximize"])
    return storage


class StorageConformance:
    """What every storage does: records trials whole, keeps numbers in order, reads them back into
    a space, stores experiment data, and refuses what it cannot do with a :class:`StorageError`."""

    @pytest.fixture
    def reopen_storage(self) -> Reopen:
        return lambda storage: storage

    def test_a_trial_goes_in_running_and_comes_back_finished(self, make_storage: Factory) -> None:
        storage, space = _opened(make_storage), _space()
        arch = space.make({"depth": 2, "op": "pool"})
        started = time.time()
        number = storage.create_trial(arch, started, worker="w1")
        [running] = storage.load_trials(space)
        assert (running.number, running.state, running.worker) == (number, TrialState.RUNNING, "w1")
        assert running.architecture == arch
        storage.report(number, 1, 0.5)
        storage.report(number, 2, 0.75)
        metrics: dict[str, Any] = {"score": 0.75, "params": 1234, "device": "cpu", "loss": math.inf}
        done = dataclasses.replace(
            running,
            state=TrialState.COMPLETE,
            metrics=metrics,
            values=(0.75,),
            finished=started + 3,
        )
        storage.finish_trial(done)
        [back] = storage.load_trials(space)
        assert back.state is TrialState.COMPLETE and back.values == (0.75,)
        assert dict(back.metrics) == {"score": 0.75, "params": 1234, "device": "cpu", "loss": math.inf}
        assert dict(back.intermediate) == {1: 0.5, 2: 0.75}
        assert back.finished == pytest.approx(started + 3) and back.started == pytest.approx(
            started, abs=1e-3
        )
        assert back.architecture.key == arch.key and back.worker == "w1"

    def test_flags_and_errors_survive(self, make_storage: Factory) -> None:
        storage, space = _opened(make_storage), _space()
        flags = [
            {"state": TrialState.FAIL, "error": "Traceback: boom", "interrupted": True},
            {"state": TrialState.FAIL, "error": "violates params <= 10", "screened": True, "feasible": False},
            {"state": TrialState.PRUNED, "metrics": {"score": 0.1, "step": 2}},
        ]
        for i, extra in enumerate(flags):
            arch = space.make({"depth": i + 1, "op": "conv"})
            number = storage.create_trial(arch, time.time())
            storage.finish_trial(Trial(number, arch, finished=time.time(), **extra))  # type: ignore[arg-type]
        back = storage.load_trials(space)
        assert [t.state for t in back] == [TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED]
        assert back[0].interrupted and not back[0].screened and back[0].error == "Traceback: boom"
        assert back[1].screened and not back[1].interrupted and not back[1].feasible
        assert dict(back[2].metrics) == {"score": 0.1, "step": 2}

    def test_numbers_count_up_from_zero_in_order(self, make_storage: Factory) -> None:
        storage, space = _opened(make_storage), _space()
        archs = [space.make({"depth": d, "op": "conv"}) for d in (1, 2, 3)]
        numbers = [storage.create_trial(a, time.time()) for a in archs]
        screened = Trial(-1, archs[0], TrialState.FAIL, error="screened", screened=True, finished=time.time())
        numbers.append(storage.record_trial(screened))  # a finished record takes the next number too
        assert numbers == [0, 1, 2, 3]
        assert [t.number for t in storage.load_trials(space)] == [0, 1, 2, 3]
        assert storage.load_trials(space)[3].state is TrialState.FAIL

    def test_experiment_data_is_json_and_claims_are_first_come(self, make_storage: Factory) -> None:
        storage = _opened(make_storage)
        assert storage.get_meta("missing") is None
        storage.set_meta("seed", 7)
        storage.set_meta("space", {"a": [1, 2], "b": None})
        storage.set_meta("worker.x", {"pid": 1})
        storage.set_meta("worker.y", {"pid": 2})
        assert storage.get_meta("seed") == 7 and storage.get_meta("space") == {"a": [1, 2], "b": None}
        assert storage.meta_items("worker.") == {"worker.x": {"pid": 1}, "worker.y": {"pid": 2}}
        assert storage.claim("final", "me") == "me"
        assert storage.claim("final", "you") == "me"

    def test_experiments_are_apart_and_named(self, make_storage: Factory, reopen_storage: Reopen) -> None:
        storage, space = _opened(make_storage, "a"), _space()
        storage.create_trial(space.make({"depth": 1, "op": "conv"}), time.time())
        storage.set_meta("seed", 1)
        assert "a" in storage.names()
        if not storage.persistent:
            return
        other = reopen_storage(storage)
        other.open("b", ["maximize"])
        assert other.load_trials(space) == [] and other.get_meta("seed") is None
        assert set(other.names()) >= {"a", "b"}

    def test_a_second_handle_sees_the_trials(self, make_storage: Factory, reopen_storage: Reopen) -> None:
        storage, space = _opened(make_storage), _space()
        if not storage.persistent:
            pytest.skip("the storage is not persistent: nothing outlives its object")
        arch = space.make({"depth": 4, "op": "pool"})
        number = storage.create_trial(arch, time.time())
        storage.finish_trial(Trial(number, arch, TrialState.COMPLETE, values=(1.0,), finished=time.time()))
        again = reopen_storage(storage)
        again.open("exp")  # attach whatever its directions
        assert [(t.architecture.key, t.values) for t in again.load_trials(space)] == [(arch.key, (1.0,))]

    def test_what_it_cannot_do_is_a_storage_error(
        self, make_storage: Factory, reopen_storage: Reopen
    ) -> None:
        fresh = make_storage()
        with pytest.raises(StorageError):
            fresh.open("nothing here")  # attach to an experiment that does not exist
        storage = _opened(make_storage)
        if storage.persistent:  # directions are part of a stored experiment
            with pytest.raises(StorageError, match=r"minimize|maximize"):
                reopen_storage(storage).open("exp", ["minimize"])

    def test_describe_says_where(self, make_storage: Factory) -> None:
        where = _opened(make_storage).describe()
        assert isinstance(where, str) and where
