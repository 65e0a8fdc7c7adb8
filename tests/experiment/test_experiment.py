from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nasforge.errors import ConfigError, NasforgeError, UnknownComponentError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment, InMemoryStorage, OptunaStorage, TrialState
from nasforge.strategy import GridSearch, RandomSearch
from nasforge.testing import ToyEstimator, toy_space


class Crashy(Estimator):
    """Raises, returns NaN, or misses the metric, depending on ``a``."""

    def evaluate(self, arch, ctx: TrialContext):
        a = arch.params["a"]
        if a == 0:
            raise RuntimeError("boom")
        if a == 1:
            return {"score": math.nan}
        if a == 2:
            return {"other": 1.0}
        ctx.report(1, float(a))
        return {"score": float(a)}


def test_ask_tell_by_hand() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"], seed=0)
    exp.set_strategy(RandomSearch(seed=0))
    t = exp.ask()
    assert t is not None and t.state is TrialState.RUNNING
    done = exp.tell(t, {"score": 3.0, "params": 10})
    assert done.state is TrialState.COMPLETE and done.values == (3.0,)
    with pytest.raises(NasforgeError, match="finished already"):
        exp.tell(t, {"score": 1.0})
    assert exp.best() is done


def test_failures_are_recorded_and_the_search_goes_on() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"], seed=0)
    exp.run(GridSearch(), Crashy(), n_trials=45)
    by_a: dict[int, set] = {}
    for t in exp.trials:
        by_a.setdefault(t.architecture.params["a"], set()).add(t.state)
    assert by_a[0] == by_a[1] == by_a[2] == {TrialState.FAIL}
    assert by_a[3] == by_a[4] == {TrialState.COMPLETE}
    errors = {t.architecture.params["a"]: t.error for t in exp.trials if t.error}
    assert "RuntimeError: boom" in errors[0] and "Traceback" in errors[0]
    assert "nan" in errors[1]
    assert "returned no 'score'" in errors[2]
    assert len(exp.trials) == 45 and exp.best().value == 4.0  # type: ignore[union-attr]
    assert all(t.intermediate == {1: float(t.architecture.params["a"])} for t in exp.trials if t.values)


def test_grid_stops_when_exhausted() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"])
    exp.run(GridSearch(), ToyEstimator(), n_trials=1000)
    assert len(exp.trials) == 45


def test_timeout_stops_starting_trials() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"])
    exp.run(RandomSearch(seed=0), ToyEstimator(), timeout=0.05)
    assert 1 <= len(exp.trials) <= 45


def test_objective_constraints_make_trials_infeasible() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"], constraints=["score <= 5"])
    exp.run(GridSearch(), ToyEstimator(), n_trials=45)
    assert exp.best().value == 5.0  # type: ignore[union-attr]
    assert any(not t.feasible for t in exp.trials)
    assert all(t.feasible for t in exp.pareto_front())


def test_unknown_strategy_name_suggests() -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"])
    with pytest.raises(UnknownComponentError, match="Did you mean 'evolution'"):
        exp.run("evolutoin", ToyEstimator(), n_trials=1)
    with pytest.raises(ConfigError, match="no option 'populaton'"):
        exp.run("evolution", ToyEstimator(), n_trials=1, strategy_options={"populaton": 3})


def test_sqlite_resume_marks_stale_running_trials_and_retries_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    exp = Experiment("x", space=toy_space(), objectives=["score"], storage=url, seed=7)
    exp.run("random", ToyEstimator(), n_trials=5)
    stale = exp.ask()  # the process "dies" while this one runs
    assert stale is not None
    before = {t.number: (t.architecture.key, t.values) for t in exp.trials if t.state.is_finished}

    again = Experiment("x", space=toy_space(), objectives=["score"], storage=url)
    assert again.seed == 7
    old = again.trials[stale.number]
    assert old.state is TrialState.FAIL and old.interrupted and "interrupted" in (old.error or "")
    est = ToyEstimator()
    again.run("random", est, n_trials=10)
    finished = [t for t in again.trials if t.state.is_finished and not t.interrupted]
    assert len(finished) == 10 and est.calls == 5
    # nothing finished was lost or changed, nothing evaluated twice, the stale one was retried first
    assert {n: (again.trials[n].architecture.key, again.trials[n].values) for n in before} == before
    keys = [t.architecture.key for t in finished]
    assert len(keys) == len(set(keys))
    assert again.trials[stale.number + 1].architecture.key == stale.architecture.key


def test_resume_refuses_other_space_objectives_or_seed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Experiment("x", space=toy_space(), objectives=["score"], storage=url, seed=1)
    from nasforge.testing import additive_space

    with pytest.raises(ConfigError, match="another search space"):
        Experiment("x", space=additive_space(), objectives=["score"], storage=url)
    with pytest.raises(NasforgeError, match="optimises"):
        Experiment("x", space=toy_space(), objectives=["-score"], storage=url)
    with pytest.raises(ConfigError, match="seed 1"):
        Experiment("x", space=toy_space(), objectives=["score"], storage=url, seed=2)


def test_optuna_storage_round_trips_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    exp = Experiment("x", space=toy_space(), objectives=["score"], storage=url, seed=0)
    exp.run(GridSearch(), Crashy(), n_trials=45)
    again = Experiment("x", space=toy_space(), objectives=["score"], storage=OptunaStorage(url))
    for a, b in zip(exp.trials, again.trials, strict=True):
        assert (a.number, a.architecture, a.state, a.values, a.feasible, a.error, dict(a.intermediate)) == (
            b.number,
            b.architecture,
            b.state,
            b.values,
            b.feasible,
            b.error,
            dict(b.intermediate),
        )
        assert {k: v for k, v in a.metrics.items() if not (isinstance(v, float) and math.isnan(v))} == {
            k: v for k, v in b.metrics.items() if not (isinstance(v, float) and math.isnan(v))
        }
    # and Optuna itself sees a normal study
    import optuna

    study = optuna.load_study(study_name="x", storage=url)
    assert study.best_trial.number == exp.best().number  # type: ignore[union-attr]


def test_run_dir_files_and_open(tmp_path: Path) -> None:
    exp = Experiment("x", space=toy_space(), objectives=["score"], run_dir=tmp_path / "run", seed=0)
    exp.run("grid", Crashy(), n_trials=45)
    rows = list(csv.DictReader((tmp_path / "run" / "leaderboard.csv").open()))
    assert len(rows) == 45 and rows[0]["rank"] == "1" and rows[-1]["state"] == "FAIL"
    assert float(rows[0]["score"]) == exp.best().value  # type: ignore[union-attr]
    best = json.loads((tmp_path / "run" / "best_architecture.json").read_text())
    assert best["key"] == exp.best().architecture.key  # type: ignore[union-attr]
    opened = Experiment.open(tmp_path / "run", space=toy_space())  # toy is not a registered space
    assert [t.architecture.key for t in opened.trials] == [t.architecture.key for t in exp.trials]


def test_open_rejects_non_run_dirs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a nasforge run directory"):
        Experiment.open(tmp_path)


def test_in_memory_meta_is_json_only() -> None:
    s = InMemoryStorage()
    s.set_meta("k", {"a": (1, 2)})
    assert s.get_meta("k") == {"a": [1, 2]}


def test_read_only_open_leaves_a_running_search_alone(tmp_path: Path) -> None:
    live = Experiment("x", space=toy_space(), objectives=["score"], run_dir=tmp_path / "run", seed=0)
    live.run(GridSearch(), ToyEstimator(), n_trials=3)
    running = live.ask()  # still being evaluated by the live process
    assert running is not None

    viewer = Experiment.open(tmp_path / "run", space=toy_space(), read_only=True)
    assert viewer.trials[running.number].state is TrialState.RUNNING
    assert viewer.finished_count() == 3
    with pytest.raises(NasforgeError, match="read-only"):
        viewer.tell(running.number, {"score": 1.0})
    with pytest.raises(NasforgeError, match="read-only"):
        viewer.ask()

    done = live.tell(running, {"score": 2.0})  # the live search is unaffected
    assert done.state is TrialState.COMPLETE
