from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.space import Architecture, Choice, Predicate, SearchSpace
from nasforge.testing import toy_space


def test_canonical_drops_inactive_and_keys_match() -> None:
    space = toy_space()
    a = space.make({"a": 1, "b": "x", "c": False, "d": 1})  # d inactive when c is False
    b = space.make({"a": 1, "b": "x", "c": False})
    assert a == b and a.key == b.key and "d" not in a.params


def test_make_validates() -> None:
    space = toy_space()
    with pytest.raises(SpaceError, match="'a' must be one of"):
        space.make({"a": 9, "b": "x", "c": False})
    with pytest.raises(SpaceError, match="missing"):
        space.make({"a": 1, "c": False})
    with pytest.raises(SpaceError, match="unknown parameter"):
        space.make({"a": 1, "b": "x", "c": False, "zzz": 1})


def test_grid_enumerates_every_point_once() -> None:
    keys = [a.key for a in toy_space().grid()]
    # a (5) x b (3) x [c False (1) + c True x d (2)] = 45
    assert len(keys) == 45 == len(set(keys))


def test_constraints_hold_for_sample_mutate_crossover_neighbours_grid() -> None:
    no_z = Predicate(lambda p: p["b"] != "z", name="no z")
    space = SearchSpace({"a": Choice([0, 1, 2]), "b": Choice(["x", "y", "z"])}, constraints=[no_z])
    rng = np.random.default_rng(0)
    produced = [space.sample(rng) for _ in range(100)]
    produced += [space.mutate(a, rng) for a in produced[:50]]
    produced += [space.crossover(produced[i], produced[i + 1], rng) for i in range(50)]
    produced += [n for a in produced[:20] for n in space.neighbours(a)]
    produced += list(space.grid())
    assert all(a.params["b"] != "z" for a in produced)
    assert len(list(space.grid())) == 6


def test_impossible_constraint_is_a_clear_error() -> None:
    space = SearchSpace({"a": Choice([0, 1])}, constraints=[Predicate(lambda p: False, name="never")])
    with pytest.raises(SpaceError, match=r"could not sample.*Predicate\(never\) rejected"):
        space.sample(np.random.default_rng(0), max_tries=20)


def test_mutate_changes_exactly_one_active_choice_or_fills_new_ones() -> None:
    space = toy_space()
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = space.sample(rng)
        m = space.mutate(a, rng)
        assert m.key != a.key
        changed = {k for k in set(a.params) | set(m.params) if a.params.get(k) != m.params.get(k)}
        assert 1 <= len(changed) <= 2  # c flip may also (de)activate d


def test_neighbours_are_one_step_away() -> None:
    space = toy_space()
    a = space.make({"a": 0, "b": "x", "c": False})
    ns = space.neighbours(a)
    assert {n.params["a"] for n in ns} == {0, 1}
    # exactly one shared value differs (flipping c also activates d, which is new)
    assert all(sum(a.params[k] != n.params[k] for k in a.params if k in n.params) == 1 for n in ns)


def test_encode_has_fixed_length_and_one_hot_blocks() -> None:
    space = toy_space()
    vecs = [space.encode(a) for a in space.grid()]
    assert {v.shape for v in vecs} == {(6 + 4 + 3 + 3,)}
    assert all(v.sum() == 4 for v in vecs)
    assert len({v.tobytes() for v in vecs}) == 45


def test_architecture_json_round_trip_for_custom_space() -> None:
    space = SearchSpace({"a": Choice([1, 2]), "b": Choice([True, False])})
    arch = space.make({"a": 2, "b": False})
    again = Architecture.from_dict(json.loads(json.dumps(arch.to_dict())))
    assert again == arch and again.params == arch.params
    assert isinstance(again.params["b"], bool)


def test_architecture_is_immutable() -> None:
    arch = toy_space().make({"a": 1, "b": "x", "c": False})
    with pytest.raises(TypeError):
        arch.params["a"] = 2  # type: ignore[index]
