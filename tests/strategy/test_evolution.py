from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.experiment import Experiment
from nasforge.strategy import RandomSearch, RegularizedEvolution
from nasforge.testing import AdditiveEstimator, additive_space


def _best(strategy, seed: int, n: int = 120) -> float:
    exp = Experiment("toy", space=additive_space(), objectives=["score"], seed=seed)
    exp.run(strategy, AdditiveEstimator(), n_trials=n)
    best = exp.best()
    assert best is not None
    return best.value  # type: ignore[return-value]


def test_evolution_beats_random_on_a_space_with_a_known_optimum() -> None:
    # 5**8 = 390,625 points, optimum 32; 120 trials each, 10 seeds.
    evo = [_best(RegularizedEvolution(population=20, tournament=5, seed=s), s) for s in range(10)]
    rnd = [_best(RandomSearch(seed=s), s) for s in range(10)]
    assert np.mean(evo) > np.mean(rnd) + 2, (evo, rnd)
    assert max(evo) >= 30


def test_crossover_variant_also_improves_on_random() -> None:
    evo = [
        _best(RegularizedEvolution(population=20, tournament=5, crossover=0.5, seed=s), s) for s in range(6)
    ]
    rnd = [_best(RandomSearch(seed=s), s) for s in range(6)]
    assert np.mean(evo) > np.mean(rnd)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"population": 1}, "population"),
        ({"tournament": 0}, "tournament"),
        ({"population": 4, "tournament": 5}, "tournament"),
        ({"crossover": 1.5}, "crossover"),
    ],
)
def test_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RegularizedEvolution(**kwargs)
