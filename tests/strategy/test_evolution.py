from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.strategy import RandomSearch, RegularizedEvolution
from nasforge.testing import best_on_additive


def test_evolution_beats_random_on_a_space_with_a_known_optimum() -> None:
    # 5**8 = 390,625 points, optimum 32; 120 trials each, 10 seeds.
    evo = [
        best_on_additive(RegularizedEvolution(population=20, tournament=5, seed=s), s, 120) for s in range(10)
    ]
    rnd = [best_on_additive(RandomSearch(seed=s), s, 120) for s in range(10)]
    assert np.mean(evo) > np.mean(rnd) + 2, (evo, rnd)
    assert max(evo) >= 30


def test_crossover_variant_also_improves_on_random() -> None:
    evo = [
        best_on_additive(RegularizedEvolution(population=20, tournament=5, crossover=0.5, seed=s), s, 120)
        for s in range(6)
    ]
    rnd = [best_on_additive(RandomSearch(seed=s), s, 120) for s in range(6)]
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
