"""The pieces of an experiment's record: one Trial type through both storages, the screened flag
(and how runs written before it are read), the run directory's file names, derived seeds."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from nasforge._seeds import derive_seed, strategy_seed, trial_seed
from nasforge.errors import ConfigError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import (
    Experiment,
    InMemoryStorage,
    OptunaStorage,
    RunDir,
    Storage,
    StoredTrial,
    Trial,
    TrialState,
)
from nasforge.testing import ToyEstimator, toy_space
from nasforge.trial import SCREENED


class _Cheap(Estimator):
    """``cost = a`` is known before evaluation; the score is ``a``."""

    def cheap_metrics(self, arch, names):
        return {"cost": float(arch.params["a"])}

    def evaluate(self, arch, ctx: TrialContext):
        return {"score": float(arch.params["a"]), "cost": float(arch.params["a"])}


def _full_trial(storage: Storage) -> Trial:
    """A finished trial with every field set to something other than its default."""
    space = toy_space()
    arch = space.make({"a": 3, "b": "y", "c": True, "d": 1})
    number = storage.create_trial(arch, 1_700_000_000.25, worker="host:1:abc")
    storage.report(number, 1, 0.5)
    storage.report(number, 2, 0.75)
    return Trial(
        number,
        arch,
        TrialState.FAIL,
        metrics={"score": 3.0, "loss": math.inf, "device": "cpu"},
        values=None,
        feasible=False,
        error="RuntimeError: boom",
        started=1_700_000_000.25,
        finished=1_700_000_009.5,
        intermediate={1: 0.5, 2: 0.75},
        interrupted=True,
        screened=False,
        worker="host:1:abc",
    )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_one_trial_type_goes_through_a_storage_and_back(kind: str, tmp_path: Path) -> None:
    assert StoredTrial is Trial  # the name earlier versions gave the storage's records
    storage: Storage = (
        InMemoryStorage() if kind == "memory" else OptunaStorage(f"sqlite:///{tmp_path / 'x.db'}")
    )
    storage.open("x", ["maximize"])
    trial = _full_trial(storage)
    storage.finish_trial(trial)
    complete = Trial(-1, trial.architecture, TrialState.COMPLETE, {"score": 1.0}, (1.0,), worker="w")
    screened = Trial(-1, trial.architecture, TrialState.FAIL, {"cost": 9}, error="x", screened=True)
    numbers = [storage.record_trial(complete), storage.record_trial(screened)]
    assert numbers == [1, 2]

    space = toy_space()
    back = storage.load_trials(space)
    assert [t.number for t in back] == [0, 1, 2]
    assert all(t.architecture.space is space for t in back)  # made in the space it was given
    got = back[0]
    for name in ("number", "state", "values", "feasible", "error", "finished", "interrupted", "screened"):
        assert getattr(got, name) == getattr(trial, name), name
    assert dict(got.metrics) == dict(trial.metrics) and dict(got.intermediate) == dict(trial.intermediate)
    assert got.architecture.key == trial.architecture.key and dict(got.params) == {
        "a": 3,
        "b": "y",
        "c": True,
        "d": 1,
    }
    assert got.started == pytest.approx(trial.started, abs=1e-3) and got.worker == "host:1:abc"
    assert (back[1].state, back[1].values, back[1].worker, back[1].screened) == (
        TrialState.COMPLETE,
        (1.0,),
        "w",
        False,
    )
    assert back[2].screened and back[2].status == "SCREENED"


def _flags(db_file: Path) -> dict[int, str]:
    with sqlite3.connect(db_file) as db:
        rows = db.execute(
            "select t.number, a.value_json from trials t join trial_user_attributes a using (trial_id) "
            "where a.key = 'nasforge.screened'"
        ).fetchall()
    return dict(rows)


def test_a_screened_trial_is_stored_as_a_flag_not_by_its_message(tmp_path: Path) -> None:
    exp = Experiment(
        "toy", space=toy_space(), objectives=["score"], constraints=["cost >= 2"], run_dir=tmp_path
    )
    exp.run("grid", _Cheap(), n_trials=3)
    trial = exp.ask()
    assert trial is not None
    lookalike = exp.tell(trial, error=f"{SCREENED}: said by the estimator")  # a failure, not a screening
    screened = [t.number for t in exp.trials if t.screened]
    assert screened and exp.finished_count() == 4 and not lookalike.screened
    # every failed trial says whether it was screened; completed ones are stored as before
    assert _flags(tmp_path / "nasforge.db") == {
        t.number: "true" if t.screened else "false" for t in exp.trials if t.state is TrialState.FAIL
    }
    again = Experiment.open(tmp_path, space=toy_space(), read_only=True)
    assert [(t.number, t.status) for t in again.trials] == [(t.number, t.status) for t in exp.trials]


def test_a_run_written_before_the_flag_is_read_by_its_errors_prefix(tmp_path: Path) -> None:
    exp = Experiment(
        "toy", space=toy_space(), objectives=["score"], constraints=["cost >= 2"], run_dir=tmp_path
    )
    exp.run("grid", _Cheap(), n_trials=3)
    statuses = [(t.number, t.status) for t in exp.trials]
    with sqlite3.connect(tmp_path / "nasforge.db") as db:  # as older versions wrote it: no flag
        db.execute("delete from trial_user_attributes where key = 'nasforge.screened'")
    assert _flags(tmp_path / "nasforge.db") == {}
    again = Experiment.open(tmp_path, space=toy_space(), read_only=True)
    assert [(t.number, t.status) for t in again.trials] == statuses
    assert again.finished_count() == 3 and any(t.screened for t in again.trials)


def test_a_trial_evaluate_screens_out_is_screened_once_told() -> None:
    exp = Experiment("toy", space=toy_space(), objectives=["score"], constraints=["cost <= 2"], seed=0)
    exp.set_strategy("grid")
    told = []
    while len(told) < 6:
        trial = exp.ask()
        assert trial is not None
        ev = exp.evaluate(trial, _Cheap())
        told.append(exp.tell(trial, ev.metrics, error=ev.error))
    assert [t.screened for t in told] == [t.metrics["cost"] > 2 for t in told]
    assert all(t.state is TrialState.FAIL for t in told if t.screened)
    assert exp.finished_count() == sum(not t.screened for t in told)


def test_the_run_directory_names_its_files(tmp_path: Path) -> None:
    files = RunDir(tmp_path)
    names = {
        "database": "nasforge.db",
        "config": "config.yaml",
        "leaderboard": "leaderboard.csv",
        "best_architecture": "best_architecture.json",
        "final": "final.json",
        "model": "model.nasforge",
        "pareto_json": "pareto.json",
        "pareto_png": "pareto.png",
        "report": "report",
    }
    for attr, name in names.items():
        assert getattr(files, attr) == tmp_path / name, attr
    assert files.database_url == f"sqlite:///{tmp_path / 'nasforge.db'}"
    assert not files.holds_search() and files.read_config() is None

    exp = Experiment("toy", space=toy_space(), objectives=["score"], run_dir=tmp_path, seed=0)
    exp.run("random", ToyEstimator(), n_trials=2)
    assert files.holds_search()
    assert {p.name for p in tmp_path.iterdir()} == {
        "nasforge.db",
        "leaderboard.csv",
        "best_architecture.json",
    }
    storage, name = files.open_storage()
    assert name == "toy" and len(storage.load_trials(toy_space())) == 2


def test_a_run_directory_is_found_or_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a nasforge run directory"):
        RunDir(tmp_path).open_storage()
    (tmp_path / "nasforge.db").write_text("not a database")
    with pytest.raises(ConfigError, match="is not a readable nasforge database"):
        RunDir(tmp_path).open_storage()

    # a worker of a search on a shared database: its config names the database and the run
    shared = tmp_path / "shared.db"
    Experiment(
        "digits-random", space=toy_space(), objectives=["score"], storage=f"sqlite:///{shared}", seed=0
    )
    worker = tmp_path / "worker"
    worker.mkdir()
    (worker / "config.yaml").write_text(
        f"data: {{name: digits}}\nstrategy: {{name: random}}\nstorage: sqlite:///{shared}\n"
    )
    assert RunDir(worker).read_config() == {
        "data": {"name": "digits"},
        "strategy": {"name": "random"},
        "storage": f"sqlite:///{shared}",
    }
    assert RunDir(worker).shared_storage() == (f"sqlite:///{shared}", "digits-random")
    storage, name = RunDir(worker).open_storage()
    assert name == "digits-random" and storage.describe() == f"sqlite:///{shared}"
    with pytest.raises(ConfigError, match="holds no experiment 'other'"):
        RunDir(worker).open_storage("other")


def test_seeds_derive_as_they_always_have() -> None:
    # values of the SplitMix64 derivation runs depend on: a change would change every search
    assert [derive_seed(0, 1, 5), derive_seed(0, 2), derive_seed(7, 2, 3), derive_seed(2**40 + 3, 3)] == [
        1021127002,
        1269570287,
        594333026,
        1626329847,
    ]
    assert trial_seed(11, 4) == derive_seed(11, 1, 4)
    assert strategy_seed(11) == derive_seed(11, 2) and strategy_seed(11, 2) == derive_seed(11, 2, 2)
    exp = Experiment("toy", space=toy_space(), objectives=["score"], seed=11)
    assert exp.trial_seed(4) == trial_seed(11, 4)
    assert exp.set_strategy("random").seed == strategy_seed(11)  # type: ignore[attr-defined]
