from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.space import Choice, IntRange
from nasforge.space._dimensions import as_dimension, dimension_from_dict


def test_choice_is_type_exact() -> None:
    c = Choice([1, True, "a"])
    assert c.contains(True) and c.contains(1) and not c.contains(1.0)
    assert c.index(True) == 1


@pytest.mark.parametrize(
    ("values", "fragment"),
    [([], "at least one"), ([1, 1], "distinct"), ([[1]], "must be str"), ("abc", "list of values")],
)
def test_choice_rejects_bad_values(values: object, fragment: str) -> None:
    with pytest.raises(SpaceError, match=fragment):
        Choice(values)  # type: ignore[arg-type]


def test_int_range_values_and_neighbours() -> None:
    r = IntRange(2, 8, step=2)
    assert r.values() == [2, 4, 6, 8]
    assert r.neighbours(2) == [4] and r.neighbours(4) == [2, 6]
    assert not r.contains(3) and not r.contains(True)


@pytest.mark.parametrize("args", [(3, 1), (0, 5, 2), (0, 4, 0), (0.5, 2)])
def test_int_range_rejects_bad_bounds(args: tuple) -> None:
    with pytest.raises(SpaceError):
        IntRange(*args)


def test_mutate_always_changes_when_possible() -> None:
    rng = np.random.default_rng(0)
    c = Choice(["a", "b", "c"])
    assert all(c.mutate("a", rng) != "a" for _ in range(50))
    assert Choice(["only"]).mutate("only", rng) == "only"


def test_sample_is_uniform_enough() -> None:
    rng = np.random.default_rng(1)
    counts = np.bincount([IntRange(0, 3).sample(rng) for _ in range(4000)], minlength=4)
    assert counts.min() > 850


@pytest.mark.parametrize("dim", [Choice([16, "x", None, False]), IntRange(1, 9, 2)])
def test_json_round_trip(dim: object) -> None:
    assert dimension_from_dict(json.loads(json.dumps(dim.to_dict()))) == dim  # type: ignore[attr-defined]


def test_shorthands() -> None:
    assert as_dimension([1, 2], what="x") == Choice([1, 2])
    assert as_dimension("relu", what="x") == Choice(["relu"])
    with pytest.raises(SpaceError, match="x:"):
        as_dimension(object(), what="x")
