"""NB201Space against the real NAS-Bench-201 table: keys, cell strings, encodings, configuration.

The table is read from ``../shared/benchmarks/nb201`` next to the repository; tests that need it
skip when it is absent.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.registry import SPACES
from nasforge.space import Architecture, NB201Space, space_from_config
from nasforge.space._nb201 import NB201_OPS, unique_str

TABLE = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "nb201" / "nb201_cifar10.csv"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    if not TABLE.is_file():
        pytest.skip(f"NB201 table not found at {TABLE} (shared benchmarks are not on this machine)")
    with TABLE.open(newline="") as f:
        return list(csv.DictReader(f))


def test_keys_induce_exactly_the_tables_canonical_classes(rows: list[dict[str, str]]) -> None:
    space = NB201Space()
    canon_of_key: dict[str, set[str]] = defaultdict(set)
    key_of_canon: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        arch = space.from_ops([int(x) for x in r["ops"].split("-")])
        canon_of_key[arch.key].add(r["canonical"])
        key_of_canon[r["canonical"]].add(arch.key)
    assert len(rows) == 15_625
    assert len(canon_of_key) == len(key_of_canon) == 6_466
    assert all(len(v) == 1 for v in canon_of_key.values())  # no key merges two table classes
    assert all(len(v) == 1 for v in key_of_canon.values())  # no table class split over two keys


def test_identity_is_nb201_unique_string(rows: list[dict[str, str]]) -> None:
    space = NB201Space()
    for r in rows[:2000]:
        arch = space.from_arch_str(r["arch_str"])
        assert space.identity(arch.params) == r["canonical"]


def test_arch_string_round_trip_for_every_row(rows: list[dict[str, str]]) -> None:
    space = NB201Space()
    for r in rows:
        arch = space.from_arch_str(r["arch_str"])
        assert space.to_arch_str(arch) == r["arch_str"] == space.describe(arch)
        ops = tuple(int(x) for x in r["ops"].split("-"))
        assert space.to_ops(arch) == ops
        assert tuple(NB201_OPS.index(arch.params[f"edge{i}"]) for i in range(6)) == ops


def test_grid_enumerates_the_whole_space_with_6466_keys() -> None:
    archs = list(NB201Space().grid())
    assert len(archs) == 15_625
    assert len({a.key for a in archs}) == 6_466


def test_isomorphic_cells_share_a_key() -> None:
    space = NB201Space()
    # node 1 feeds only 'none' edges, so edge0's operation does not matter
    a = space.from_arch_str("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    b = space.from_arch_str("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|")
    # skip_connect is the identity and sums are commutative: node 2 = conv3(x) + conv1(x) in both
    c = space.from_arch_str("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|")
    d = space.from_arch_str("|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|")
    e = space.from_arch_str(BEST)
    assert a.key == b.key and a.params != b.params
    assert c.key == d.key
    assert e.key not in (a.key, c.key)
    assert unique_str(("none",) * 6) == "#+#+#"


def test_keys_follow_the_benchmark_not_full_semantics() -> None:
    # Both compute conv3(x) + pool(x), but NB201's string keeps node 2's zero term ('#+...') and
    # the benchmark lists them as two topologies; the keys follow the benchmark.
    space = NB201Space()
    c = space.from_arch_str("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|")
    d = space.from_arch_str("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|")
    assert c.key != d.key


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "nor_conv_3x3",
        "|nor_conv_3x3~0|+|none~0|none~1|",  # two nodes
        "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 with one input
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source index
        "|none0|+|none~0|none~1|+|none~0|none~1|none~2|",  # no '~'
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # missing bar
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
    ],
)
def test_malformed_arch_strings_raise_space_error(bad: str) -> None:
    with pytest.raises(SpaceError, match="NB201 cell string"):
        NB201Space().from_arch_str(bad)


def test_unknown_op_message_suggests_the_closest() -> None:
    with pytest.raises(SpaceError, match="Did you mean 'nor_conv_3x3'"):
        NB201Space().from_arch_str("|nor_conv3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")


@pytest.mark.parametrize("bad", [[1, 2, 3], [0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, True], "012340", [0.0] * 6])
def test_from_ops_rejects_bad_input(bad: object) -> None:
    with pytest.raises(SpaceError):
        NB201Space().from_ops(bad)  # type: ignore[arg-type]


def test_from_ops_accepts_numpy() -> None:
    arch = NB201Space().from_ops(np.array([3, 3, 3, 1, 3, 2], dtype=np.int8))
    assert NB201Space().to_arch_str(arch) == BEST


def test_subset_of_ops() -> None:
    space = NB201Space(ops=["nor_conv_3x3", "skip_connect"])  # kept in NB201 order
    assert space.ops == ("skip_connect", "nor_conv_3x3")
    assert space.dimensions()["edge0"].values() == ["skip_connect", "nor_conv_3x3"]
    assert len(list(space.grid())) == 64
    with pytest.raises(SpaceError, match="does not allow"):
        space.from_arch_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(SpaceError, match="does not allow"):
        space.from_ops([0, 1, 1, 1, 1, 1])
    arch = space.sample(np.random.default_rng(0))
    assert set(arch.params.values()) <= set(space.ops)
    assert space.path_encoding(arch).shape == (2 + 4 + 8,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ops": []}, "non-empty"),
        ({"ops": "none"}, "non-empty"),
        ({"ops": ["none", "conv"]}, "unknown operation 'conv'"),
        ({"ops": ["none", "none"]}, "distinct"),
        ({"C": 0}, "C must be"),
        ({"N": 1.5}, "N must be"),
        ({"N": True}, "N must be"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SpaceError, match=match):
        NB201Space(**kwargs)  # type: ignore[arg-type]


def test_config_round_trip_and_registry() -> None:
    assert SPACES.get("nb201") is NB201Space
    assert SPACES.get("nasbench201") is NB201Space
    space = NB201Space(ops=["none", "nor_conv_3x3", "avg_pool_3x3"], C=8, N=2)
    spec = space.to_dict()
    assert spec == {"name": "nb201", "ops": ["none", "nor_conv_3x3", "avg_pool_3x3"], "C": 8, "N": 2}
    again = space_from_config(spec)
    assert isinstance(again, NB201Space)
    assert (again.ops, again.C, again.N) == (space.ops, 8, 2)
    arch = space.sample(np.random.default_rng(3))
    back = Architecture.from_dict(arch.to_dict())
    assert back.key == arch.key and dict(back.params) == dict(arch.params)
    assert isinstance(back.space, NB201Space) and back.space.C == 8


def test_path_encoding() -> None:
    space = NB201Space()
    best = space.path_encoding(space.from_arch_str(BEST))
    assert best.shape == (84,) and best.dtype == np.float32
    # alphabet (skip, conv1x1, conv3x3, pool) -> 0..3; paths 0->3, 0->1->3, 0->2->3, 0->1->2->3
    k = 4
    expected = {
        0,  # [skip]
        k + 2 + 2 * k,  # [conv3, conv3]
        k + 2 + 1 * k,  # [conv3, conv1]
        k + k**2 + 2 + 2 * k + 1 * k**2,  # [conv3, conv3, conv1]
    }
    assert set(np.flatnonzero(best)) == expected
    empty = space.path_encoding(space.from_ops([0] * 6))
    assert not empty.any()
    # only the direct path survives when the other paths go through 'none'
    direct = space.path_encoding(space.from_ops([0, 0, 0, 4, 3, 3]))
    assert list(np.flatnonzero(direct)) == [3]


def test_encode_sample_mutate_and_neighbours() -> None:
    space = NB201Space()
    rng = np.random.default_rng(7)
    arch = space.sample(rng)
    enc = space.encode(arch)
    assert enc.shape == (36,) and enc.sum() == 6
    child = space.mutate(arch, rng)
    assert child.key != arch.key
    assert sum(child.params[k] != arch.params[k] for k in arch.params) == 1
    nbrs = space.neighbours(arch)
    assert 0 < len(nbrs) <= 24 and all(n.key != arch.key for n in nbrs)
    assert len({n.key for n in nbrs}) == len(nbrs)


def test_build_needs_a_task_shape() -> None:
    space = NB201Space(C=4, N=1)
    arch = space.from_arch_str(BEST)
    with pytest.raises(SpaceError, match="input shape"):
        space.build(arch)
    bound = space.bind((1, 8, 8), 3)
    assert bound.count_params(arch) > 0
