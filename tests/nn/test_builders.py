"""The builder registry: every built-in space with a network finds its builder in nn by name."""

from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.hardware import count_params
from nasforge.nn import ACTIVATIONS, CHAIN_OPS
from nasforge.registry import BUILDERS, SPACES
from nasforge.space import Choice, SearchSpace
from nasforge.space._vocab import ACTIVATION_MODULES
from nasforge.space._vocab import CHAIN_OPS as SPACE_CHAIN_OPS


def test_every_builder_is_named_after_a_registered_space() -> None:
    assert set(BUILDERS.names()) <= set(SPACES.names())


@pytest.mark.parametrize("name", SPACES.names())
def test_a_space_has_a_builder_exactly_when_one_is_registered(name: str) -> None:
    space = SPACES.create(name)
    assert space.has_builder is (name in BUILDERS)
    if not space.has_builder:  # the tabular-benchmark spaces
        arch = space.sample(np.random.default_rng(0))
        with pytest.raises(SpaceError, match="has no network builder"):
            arch.build((3, 16, 16), 3)


@pytest.mark.parametrize("name", BUILDERS.names())
def test_builders_honour_the_width_multiplier(name: str) -> None:
    space = SPACES.create(name).bind((3, 32, 32), 4)
    arch = space.sample(np.random.default_rng(1))
    full = count_params(arch.build(device="meta"))
    half = count_params(arch.build(device="meta", width=0.5))
    assert half < full


def test_a_space_that_only_shares_a_name_gets_no_builder() -> None:
    class Impostor(SearchSpace):
        name = "nb201"

    space = Impostor({"a": Choice([1, 2])}).bind((3, 8, 8), 2)
    assert space.has_builder  # by name ...
    with pytest.raises(SpaceError, match="builds NB201Space architectures"):  # ... but not of its type
        space.sample(np.random.default_rng(0)).build()


def test_nn_implements_every_name_the_spaces_offer() -> None:
    assert set(ACTIVATIONS) == set(ACTIVATION_MODULES)
    assert CHAIN_OPS == SPACE_CHAIN_OPS
    assert all(type(ACTIVATIONS[n]()).__name__ == cls for n, cls in ACTIVATION_MODULES.items())
