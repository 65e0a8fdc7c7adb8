from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.estimate._mlp import MLPEnsemble
from nasforge.experiment import Experiment
from nasforge.objective import Objective
from nasforge.space import Architecture, Choice, SearchSpace
from nasforge.strategy import Bananas, RandomSearch
from nasforge.testing import AdditiveEstimator, additive_space, best_on_additive, run_additive


def test_bananas_beats_random_on_an_additive_space() -> None:
    bo = [best_on_additive(Bananas(seed=s), s, 50) for s in range(5)]
    rnd = [best_on_additive(RandomSearch(seed=s), s, 50) for s in range(5)]
    assert np.mean(bo) > np.mean(rnd) + 3, (bo, rnd)


@pytest.mark.parametrize("predictor", ["rf", "gbm", "gp"])
def test_other_predictors_guide_the_search_too(predictor: str) -> None:
    options = {} if predictor == "gp" else {"n_estimators": 30}
    make = lambda s: Bananas(predictor=predictor, predictor_options=options, refit_every=5, seed=s)  # noqa: E731
    bo = [best_on_additive(make(s), s, 50) for s in range(3)]
    rnd = [best_on_additive(RandomSearch(seed=s), s, 50) for s in range(3)]
    assert np.mean(bo) > np.mean(rnd) + 2, (bo, rnd)


def test_ensemble_beats_a_constant_predictor_on_held_out_points() -> None:
    space = additive_space()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    X = np.stack([space.encode(a) for a in archs])
    y = np.array([sum(a.params.values()) for a in archs], dtype=float)
    ens = MLPEnsemble().fit(X[:100], y[:100], np.random.default_rng(1))
    preds = ens.predict(X[100:])
    assert preds.shape == (5, 200)
    mse = np.mean((preds.mean(axis=0) - y[100:]) ** 2)
    const = np.mean((y[:100].mean() - y[100:]) ** 2)
    assert mse < 0.3 * const, (mse, const)
    assert preds.std(axis=0).mean() > 0  # members differ: a usable uncertainty


def test_strategy_predictor_ranks_held_out_architectures() -> None:
    bo = Bananas(seed=0)
    exp = run_additive(bo, 0, 40)
    seen = {t.architecture.key for t in exp.trials}
    rng = np.random.default_rng(5)
    held = [a for a in (additive_space().sample(rng) for _ in range(100)) if a.key not in seen]
    mean, std = bo.predict(held)
    truth = np.array([sum(a.params.values()) for a in held])
    assert np.corrcoef(mean, truth)[0, 1] > 0.7
    assert mean.shape == std.shape == (len(held),)


def test_uses_the_path_encoding_when_the_space_has_one() -> None:
    calls: list[str] = []

    class PathSpace(SearchSpace):
        name = "path"

        def path_encoding(self, arch: Architecture) -> np.ndarray:
            calls.append(arch.key)
            return np.array([float(v) for v in arch.params.values()])

    space = PathSpace({f"x{i}": Choice(list(range(5))) for i in range(4)})
    exp = run_additive(Bananas(n_initial=5, seed=1), 1, 15, space=space)
    assert calls and len(exp.trials) == 15


@pytest.mark.parametrize("acquisition", ["ucb", "mean"])
def test_other_acquisitions_and_batches(acquisition: str) -> None:
    exp = run_additive(Bananas(acquisition=acquisition, batch=3, refit_every=3, seed=2), 2, 25)
    keys = [t.architecture.key for t in exp.trials]
    assert len(keys) == len(set(keys)) == 25


def test_resume_with_a_stale_model_refits_the_same_one() -> None:
    # refit_every > 1: the model in use was fitted some tells ago; the state says on what and how
    def make(seed: int) -> Bananas:
        return Bananas(n_initial=6, batch=2, refit_every=3, seed=seed)

    space = additive_space()
    straight = run_additive(make(3), 3, 26)
    first = Experiment("additive", space=space, objectives=["score"], seed=3)
    first.run(make(3), AdditiveEstimator(), n_trials=12)  # stops while the model lags by two results
    resumed = Experiment("additive", space=space, objectives=["score"], storage=first.storage)
    resumed.run(make(3), AdditiveEstimator(), n_trials=26)
    assert [t.architecture.key for t in resumed.trials] == [t.architecture.key for t in straight.trials]


def test_predict_needs_data() -> None:
    bo = Bananas(seed=0)
    bo.setup(additive_space(), Objective(["score"]))
    with pytest.raises(ConfigError, match="two completed"):
        bo.predict([additive_space().sample(np.random.default_rng(0))])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_initial": 1}, "n_initial"),
        ({"n_models": 0}, "n_models"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"top_k": 0}, "top_k"),
        ({"batch": 0}, "batch"),
        ({"refit_every": 0}, "refit_every"),
        ({"epochs": 0}, "epochs"),
        ({"acquisition": "ei"}, "its, ucb, mean"),
        ({"hidden": []}, "hidden"),
        ({"hidden": [20, 0]}, "hidden"),
        ({"predictor": "xgb"}, "unknown predictor 'xgb'; valid predictors: gbm, rf, mlp, gp"),
        ({"predictor": "mean"}, "unknown predictor"),
        ({"predictor_options": {"n_estimators": 5}}, "the mlp ensemble takes"),
        ({"predictor": "rf", "predictor_options": {"trees": 5}}, "trees"),
        ({"predictor": "rf", "predictor_options": {"seed": 5}}, "seed"),
    ],
)
def test_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Bananas(**kwargs)
