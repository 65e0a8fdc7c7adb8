from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment
from nasforge.space import Architecture, Choice, IntRange, Predicate, SearchSpace
from nasforge.strategy import TPE, OptunaStrategy, RandomSearch
from nasforge.testing import (
    AdditiveEstimator,
    ToyEstimator,
    additive_space,
    best_on_additive,
    toy_space,
)


def _run(strategy, seed: int, n: int, space=None, estimator=None, objectives=("score",)) -> Experiment:
    exp = Experiment("optuna", space=space or additive_space(), objectives=list(objectives), seed=seed)
    return exp.run(strategy, estimator or AdditiveEstimator(), n_trials=n)


def test_tpe_beats_random_on_an_additive_space() -> None:
    tpe = [best_on_additive(TPE(seed=s), s) for s in range(6)]
    rnd = [best_on_additive(RandomSearch(seed=s), s) for s in range(6)]
    assert np.mean(tpe) > np.mean(rnd) + 2, (tpe, rnd)


def test_conditional_dimensions_are_suggested_only_when_active() -> None:
    strategy = TPE(n_startup_trials=5, seed=0)
    exp = _run(strategy, 0, 25, space=toy_space(), estimator=ToyEstimator())
    assert len(exp.trials) == 25
    trials = strategy.study.trials
    assert len(trials) >= 25
    for t in trials:
        assert ("d" in t.params) == t.params["c"], t.params


def test_space_constraints_are_respected_and_violations_told_as_failures() -> None:
    space = SearchSpace(
        {"a": IntRange(0, 6, step=2), "b": Choice(["x", "y", "z"]), "c": IntRange(1, 4)},
        constraints=[Predicate(lambda p: p["a"] + p["c"] <= 6, name="a + c <= 6")],
    )

    class Sum(Estimator):
        def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
            return {"score": arch.params["a"] + arch.params["c"] + (arch.params["b"] == "z")}

    strategy = OptunaStrategy(sampler="random", seed=1)
    exp = _run(strategy, 1, 25, space=space, estimator=Sum())
    assert all(t.architecture.params["a"] + t.architecture.params["c"] <= 6 for t in exp.trials)
    failed = [t for t in strategy.study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["a"] + t.params["c"] > 6 for t in failed)
    assert {t.params["a"] for t in strategy.study.trials} <= {0, 2, 4, 6}  # steps honoured


class TwoMetrics(Estimator):
    def evaluate(self, arch: Architecture, ctx: TrialContext) -> Mapping[str, float]:
        total = float(sum(arch.params.values()))
        return {"score": total, "other": total**2 / 10 + arch.params["x0"]}


def test_nsga2_with_two_objectives() -> None:
    strategy = OptunaStrategy(sampler="nsga2", population_size=8, seed=3)
    exp = _run(strategy, 3, 40, estimator=TwoMetrics(), objectives=("score", "-other"))
    assert [d.name for d in strategy.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = [t for t in strategy.study.trials if t.state.name == "COMPLETE"]
    assert len(done) >= 40 and all(len(t.values) == 2 for t in done)
    assert len(exp.pareto_front()) >= 2
    generations = [v for t in done for k, v in t.system_attrs.items() if k.endswith(":generation")]
    assert max(generations) >= 2


def test_nsga2_resumes_identically_across_generations() -> None:
    def make(seed: int) -> OptunaStrategy:
        return OptunaStrategy(sampler="nsga2", population_size=6, seed=seed)

    straight = _run(make(5), 5, 40)
    first = Experiment("optuna", space=additive_space(), objectives=["score"], seed=5)
    first.run(make(5), AdditiveEstimator(), n_trials=17)
    resumed = Experiment("optuna", space=additive_space(), objectives=["score"], storage=first.storage)
    resumed.run(make(5), AdditiveEstimator(), n_trials=40)
    assert [t.architecture.key for t in resumed.trials] == [t.architecture.key for t in straight.trials]


def test_warm_start_trials_are_added_to_the_study() -> None:
    exp = Experiment("warm", space=toy_space(), objectives=["score"], seed=0)
    exp.run(RandomSearch(seed=0), ToyEstimator(), n_trials=8)
    strategy = TPE(seed=0)
    exp.run(strategy, ToyEstimator(), n_trials=12)
    values = [t.value for t in strategy.study.trials[:8]]
    assert values == [t.value for t in exp.trials[:8]]


def test_metric_constraints_reach_the_sampler() -> None:
    strategy = TPE(n_startup_trials=5, seed=2)
    exp = Experiment("c", space=toy_space(), objectives=["score"], constraints=["score <= 6"], seed=2)
    exp.run(strategy, ToyEstimator(), n_trials=30)
    for t in strategy.study.trials:
        if t.state.name == "COMPLETE":
            (violation,) = t.constraints.values()
            assert (violation > 0) == (t.values[0] > 6)
    best = exp.best()
    assert best is not None and best.value == 6.0


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("scipy") is None,
    reason="GPSampler needs torch and scipy",
)
def test_gp_sampler_runs() -> None:
    exp = _run(
        OptunaStrategy(sampler="gp", n_startup_trials=4, seed=0),
        0,
        8,
        space=toy_space(),
        estimator=ToyEstimator(),
    )
    assert len(exp.trials) == 8


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is not None, reason="cmaes is installed")
def test_missing_dependency_is_named() -> None:
    with pytest.raises(ImportError, match="cmaes"):
        OptunaStrategy(sampler="cmaes")


def test_optuna_logging_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    _run(TPE(seed=0), 0, 5, space=toy_space(), estimator=ToyEstimator())
    captured = capsys.readouterr()
    assert "Trial" not in captured.err and "Trial" not in captured.out


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"sampler": "bohb"}, "tpe, random, gp, nsga2"),
        ({"sampler": "tpe", "population_size": 10}, "no option 'population_size'.*n_startup_trials"),
        ({"sampler": "nsga2", "population_size": 1}, "population_size"),
        ({"sampler": "random", "seed": 3, "max_retries": 0}, "max_retries"),
    ],
)
def test_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        OptunaStrategy(**kwargs)


def test_tpe_options_pass_through() -> None:
    strategy = TPE(n_startup_trials=3, multivariate=True, group=True, n_ei_candidates=8, seed=0)
    assert strategy.sampler_options["n_ei_candidates"] == 8
    _run(strategy, 0, 12, space=toy_space(), estimator=ToyEstimator())
    with pytest.raises(ConfigError, match="sampler"):
        TPE(sampler="random")
