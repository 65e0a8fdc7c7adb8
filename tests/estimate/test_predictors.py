"""Surrogate predictors: encodings, the fit/predict contract, and real NB201 rows held out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.estimate import (
    PREDICTORS,
    PredictorEstimator,
    TrialContext,
    encode_architectures,
    make_predictor,
)
from nasforge.experiment import Experiment
from nasforge.space import NB201Space
from nasforge.testing import toy_space

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
HAVE_NB201 = (BENCH / "nb201" / "nb201_cifar10.csv").is_file()
SPACE = NB201Space()


def _sample(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [SPACE.sample(rng) for _ in range(n)]


def test_encodings_of_the_nb201_space() -> None:
    arch = SPACE.from_arch_str(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    )
    onehot = encode_architectures([arch], "onehot")[0]
    adjacency = encode_architectures([arch], "adjacency")[0].reshape(4, 4, 5)
    path = encode_architectures([arch], "path")[0]
    assert encode_architectures([arch])[0].tolist() == path.tolist()  # auto: path where available
    assert onehot.sum() == 6 and adjacency.sum() == 6
    assert adjacency[1, 0, 3] == 1 and adjacency[2, 0, 0] == 1 and adjacency[3, 2, 2] == 1
    assert adjacency[0].sum() == 0 and adjacency[3, 3].sum() == 0  # not edges
    # paths: 0->3 (avg_pool) and 0->1->2->3 (conv3, skip, conv1) exist; 0->1->3 and 0->2->3 do not
    assert path.sum() == 2
    with pytest.raises(ConfigError, match="no path encoding"):
        encode_architectures([toy_space().sample(np.random.default_rng(0))], "path")
    with pytest.raises(ConfigError, match="valid encodings"):
        encode_architectures([arch], "graph")


def _target(archs: list) -> np.ndarray:
    """A synthetic metric with interactions: convolutions help, but only on connected paths."""
    return np.array(
        [3.0 * encode_architectures([a], "path")[0][:4].sum() + SPACE.to_ops(a).count(3) for a in archs]
    )


@pytest.mark.parametrize("name", sorted(set(PREDICTORS) - {"mean"}))
def test_fit_predict_contract(name: str) -> None:
    archs = _sample(60, 0)
    y = _target(archs)
    pred = make_predictor(name, seed=0)
    first = pred.fit(archs, y).predict(archs[:10])
    assert first.shape == (10,) and np.isfinite(first).all()
    again = make_predictor(name, seed=0).fit(archs, y).predict(archs[:10])
    assert np.allclose(first, again)  # seeded
    mean, std = pred.predict_dist(archs[:10])
    assert np.allclose(mean, first) and (std is None or (std >= 0).all())
    feats = np.arange(60, dtype=float)
    with_feats = make_predictor(name, seed=0).fit(archs, y, features=feats)
    assert with_feats.predict(archs[:5], features=feats[:5]).shape == (5,)
    with pytest.raises(ConfigError, match="features per architecture"):
        with_feats.predict(archs[:5])


def test_bad_input_is_a_config_error() -> None:
    archs = _sample(5, 1)
    with pytest.raises(ConfigError, match="Did you mean 'gbm'"):
        make_predictor("gmb")
    with pytest.raises(ConfigError, match="has no option 'depth'"):
        make_predictor("gbm", depth=3)
    with pytest.raises(ConfigError, match="fit\\(\\) first"):
        make_predictor("rf").predict(archs)
    with pytest.raises(ConfigError, match="5 architectures but 4 targets"):
        make_predictor("rf").fit(archs, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ConfigError, match="finite"):
        make_predictor("rf").fit(archs, [1.0, 2.0, float("nan"), 4.0, 5.0])
    with pytest.raises(ConfigError, match="fitted predictor"):
        PredictorEstimator(make_predictor("rf"))


@pytest.mark.skipif(not HAVE_NB201, reason=f"NB201 table not found in {BENCH}")
@pytest.mark.parametrize("name", sorted(set(PREDICTORS) - {"mean"}))
def test_predictors_beat_the_constant_baseline_on_held_out_nb201_rows(name: str) -> None:
    from scipy.stats import spearmanr

    from nasforge.estimate._tables import NB201Table

    table = NB201Table(BENCH)
    archs = _sample(450, 2)
    y = np.array([table.evaluate(a, TrialContext(0, 0))["valid_acc_12ep"] for a in archs])
    train, test = slice(0, 150), slice(150, None)
    baseline = make_predictor("mean").fit(archs[train], y[train]).predict(archs[test])
    pred = make_predictor(name, seed=0).fit(archs[train], y[train]).predict(archs[test])
    mse, base_mse = np.mean((pred - y[test]) ** 2), np.mean((baseline - y[test]) ** 2)
    assert mse < 0.8 * base_mse
    assert spearmanr(pred, y[test])[0] > 0.6


def test_a_fitted_predictor_is_an_estimator() -> None:
    archs = _sample(40, 3)
    rf = make_predictor("rf", seed=0).fit(archs, _target(archs))
    exp = Experiment("surrogate", space=SPACE, objectives=["predicted"], seed=0)
    exp.run("random", PredictorEstimator(rf), n_trials=10)
    best = exp.best()
    assert best is not None and "predicted_std" in best.metrics
    assert best.value == pytest.approx(float(rf.predict([best.architecture])[0]))
