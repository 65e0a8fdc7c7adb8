"""DartsSpace against NAS-Bench-301's ConfigSpace file, and the NAS-Bench-Macro space."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasforge.errors import SpaceError
from nasforge.registry import SPACES
from nasforge.space import Architecture, space_from_config
from nasforge.space._darts import CONFIGSPACE_PREFIX, DARTS_OPS, DartsSpace, edge_input, to_configspace
from nasforge.space._macro import MacroSpace

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
CONFIG_SPACE = BENCH / "nb301-yahpo" / "config_space_v2.json"

SPACE = DartsSpace()


@pytest.fixture(scope="module")
def config_space() -> dict[str, Any]:
    if not CONFIG_SPACE.is_file():
        pytest.skip(f"NAS-Bench-301 ConfigSpace file not found at {CONFIG_SPACE}")
    return json.loads(CONFIG_SPACE.read_text())


def _short(name: str) -> str:
    assert name.startswith(CONFIGSPACE_PREFIX)
    return name[len(CONFIGSPACE_PREFIX) :]


def _json_active(config_space: dict[str, Any], params: dict[str, Any]) -> set[str]:
    """The dimensions the ConfigSpace's conditions make active, given the input choices in params."""
    conditions = {_short(c["child"]): c for c in config_space["conditions"]}
    active = set()
    for hp in config_space["hyperparameters"]:
        if hp["name"] == "epoch":
            continue
        name = _short(hp["name"])
        cond = conditions.get(name)
        if cond is None or params.get(_short(cond["parent"])) in cond["values"]:
            active.add(name)
    return active


def test_dimensions_are_the_configspace_hyperparameters(config_space: dict[str, Any]) -> None:
    hps = {_short(h["name"]): h for h in config_space["hyperparameters"] if h["name"] != "epoch"}
    dims = SPACE.dimensions()
    assert set(dims) == set(hps) and len(dims) == 34
    for name, dim in dims.items():
        assert dim.values() == hps[name]["choices"], name  # same values, same order
    assert list(DARTS_OPS) == hps["edge_normal_0"]["choices"]


def test_activity_rule_is_the_24_conditions(config_space: dict[str, Any]) -> None:
    conds = config_space["conditions"]
    assert len(conds) == 24 and all(c["type"] == "IN" for c in conds)
    conditional = {_short(c["child"]) for c in conds}
    for name in SPACE.dimensions():
        if name not in conditional:
            assert SPACE.is_active(name, {}), name
    for c in conds:
        child, parent = _short(c["child"]), _short(c["parent"])
        # the parent comes first in dimension order (activity may look only backwards)
        order = list(SPACE.dimensions())
        assert order.index(parent) < order.index(child)
        for value in SPACE.dimensions()[parent].values():
            assert SPACE.is_active(child, {parent: value}) == (value in c["values"]), (child, value)


def test_samples_hold_exactly_the_active_values_and_round_trip(config_space: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = SPACE.sample(rng)
        params = dict(arch.params)
        assert set(params) == _json_active(config_space, params)
        assert len(params) == 22  # per cell: 3 input choices + 2 edges for each of 4 nodes
        assert SPACE.make(params).key == arch.key
        assert Architecture.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
        assert SPACE.from_configspace(to_configspace(arch)).key == arch.key


def test_mutants_and_neighbours_are_valid(config_space: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    arch = SPACE.sample(rng)
    for _ in range(100):
        child = SPACE.mutate(arch, rng)
        assert child.key != arch.key
        assert set(child.params) == _json_active(config_space, dict(child.params))
        arch = child
    neighbours = SPACE.neighbours(arch)
    assert len({n.key for n in neighbours}) == len(neighbours) > 100
    for n in neighbours[:50]:
        assert set(n.params) == _json_active(config_space, dict(n.params))


def test_full_configspace_names_and_inactive_values_are_accepted() -> None:
    arch = SPACE.sample(np.random.default_rng(2))
    full = {**to_configspace(arch), "epoch": 98}
    # an inactive edge a ConfigSpace sampler might still carry is dropped, not an error
    inactive = next(f"edge_normal_{e}" for e in range(2, 14) if f"edge_normal_{e}" not in arch.params)
    full[CONFIGSPACE_PREFIX + inactive] = "skip_connect"
    assert SPACE.from_configspace(full).key == arch.key
    with pytest.raises(SpaceError, match="unknown parameter"):
        SPACE.from_configspace({**full, "edge_normal_99": "skip_connect"})
    with pytest.raises(SpaceError, match="must be one of"):
        SPACE.make({**arch.params, "edge_normal_0": "conv_7x7"})


def test_genotype_matches_the_input_choices() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        arch = SPACE.sample(rng)
        geno = SPACE.genotype(arch)
        for cell in ("normal", "reduce"):
            pairs = geno[cell]
            assert len(pairs) == 8 and geno[f"{cell}_concat"] == [2, 3, 4, 5]
            assert [i for _, i in pairs[:2]] == [0, 1]
            for k, node in enumerate((3, 4, 5)):
                inputs = sorted(i for _, i in pairs[2 + 2 * k : 4 + 2 * k])
                assert "_".join(map(str, inputs)) == arch.params[f"inputs_node_{cell}_{node}"]
        assert SPACE.describe(arch).startswith("normal: ")


def test_edge_numbering() -> None:
    assert [edge_input(e) for e in (0, 1, 2, 4, 5, 8, 9, 13)] == [
        (2, 0), (2, 1), (3, 0), (3, 2), (4, 0), (4, 3), (5, 0), (5, 4)
    ]  # fmt: skip
    with pytest.raises(SpaceError):
        edge_input(14)


def test_registered_serialisable_and_no_builder() -> None:
    assert type(SPACES.create("darts")) is DartsSpace and type(SPACES.create("nb301")) is DartsSpace
    assert space_from_config(SPACE.to_dict()).dimensions() == SPACE.dimensions()
    arch = SPACE.sample(np.random.default_rng(4))
    with pytest.raises(SpaceError, match="no network builder"):
        arch.build((3, 32, 32), 10)


# ------------------------------------------------------------------ NAS-Bench-Macro space
def test_macro_space_is_3_to_the_8_digit_strings() -> None:
    space = SPACES.create("nb_macro")
    assert isinstance(space, MacroSpace)
    assert list(space.dimensions()) == [f"layer{i}" for i in range(8)]
    assert all(d.values() == ["0", "1", "2"] for d in space.dimensions().values())
    archs = list(space.grid())
    assert len(archs) == 3**8 == len({a.key for a in archs})  # identity layers are not merged
    arch = space.from_arch_str("22212220")
    assert space.to_arch_str(arch) == "22212220"
    assert space.describe(arch).startswith("MB6_K5 > MB6_K5 > MB6_K5 > MB3_K3 > MB6_K5")
    assert space_from_config(space.to_dict()).dimensions() == space.dimensions()
    for bad in ("2221222", "22212223", 22212220):
        with pytest.raises(SpaceError, match="8 digits"):
            space.from_arch_str(bad)  # type: ignore[arg-type]
