from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError, SpaceError
from nasforge.hardware import count_params
from nasforge.space import Architecture, ChainCNN, MaxParams, Predicate, load_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")


WIDE = ChainCNN(
    depth=(1, 7),
    layer={
        "kernel": [1, 3, 5, 7],
        "stride": [1, 2],
        "padding": ["same", "valid"],
        "filters": [4, 8],
        "act": ["relu", "gelu", "hardswish", "silu"],
    },
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 5, 7), (2, 1, 1)])
def test_every_sampled_architecture_builds_and_runs(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for _ in range(40):
        arch = WIDE.sample(rng)
        model = arch.build(shape, 7)
        out = model(torch.randn(2, *shape))
        assert out.shape == (2, 7) and torch.isfinite(out).all(), WIDE.describe(arch)
        model.eval()
        model(torch.randn(1, *shape))


def test_mutants_and_crossovers_build_too() -> None:
    rng = np.random.default_rng(7)
    archs = [WIDE.sample(rng) for _ in range(20)]
    kids = [WIDE.mutate(a, rng) for a in archs] + [
        WIDE.crossover(a, b, rng) for a, b in itertools.pairwise(archs)
    ]
    for k in kids:
        assert k.build((1, 8, 8), 10)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_pool_layers_have_no_conv_settings() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = WIDE.sample(rng)
        for i in range(arch.params["depth"]):
            has = f"layer{i}.filters" in arch.params
            assert has == (arch.params[f"layer{i}.op"] in ("conv", "sepconv"))
        assert not any(k.startswith(f"layer{arch.params['depth']}.") for k in arch.params)


def test_max_params_is_respected_by_sampling_and_mutation() -> None:
    space = ChainCNN(depth=(2, 6), layer={"filters": [16, 64, 128]}, max_params=20_000).bind((1, 8, 8), 10)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    archs += [space.mutate(a, rng) for a in archs]
    for a in archs:
        assert count_params(a.build()) <= 20_000
    assert max(count_params(a.build()) for a in archs) > 5_000  # the limit is not trivially slack


def test_max_params_needs_the_task_shape() -> None:
    space = ChainCNN(max_params=1000)
    with pytest.raises(SpaceError, match="input shape"):
        space.sample(np.random.default_rng(0))


def test_predicate_constraint() -> None:
    space = ChainCNN(constraints=[Predicate(lambda p: p["layer0.op"] == "conv", name="conv first")])
    rng = np.random.default_rng(1)
    assert all(space.sample(rng).params["layer0.op"] == "conv" for _ in range(50))


def test_bad_layer_settings_are_rejected() -> None:
    with pytest.raises(SpaceError, match="kernel"):
        ChainCNN(layer={"kernel": [2]})
    with pytest.raises(SpaceError, match="act"):
        ChainCNN(layer={"act": ["reluu"]})
    with pytest.raises(SpaceError, match="no setting"):
        ChainCNN(layer={"kernal": [3]})
    with pytest.raises(SpaceError, match="depth"):
        ChainCNN(depth=(0, 3))


def test_json_round_trip_keeps_space_and_point() -> None:
    space = ChainCNN(depth=(2, 3), layer={"filters": [8, 16]}, max_params=50_000)
    bound = space.bind((1, 8, 8), 10)
    arch = bound.sample(np.random.default_rng(0))
    data = json.loads(json.dumps(arch.to_dict()))
    again = Architecture.from_dict(data)
    assert again == arch
    assert again.space.to_dict() == bound.to_dict()
    assert again.build()(torch.zeros(1, 1, 8, 8)).shape == (1, 10)  # the file knows the task shape


def test_yaml_space(tmp_path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        "name: chain_cnn\ndepth: [2, 4]\nlayer:\n  op: [conv, maxpool]\n  filters: [8, 16]\n"
        "  act: [relu, gelu]\nmax_params: 30000\n"
    )
    space = load_space(path)
    assert isinstance(space, ChainCNN)
    assert space.depth_dim.values() == [2, 3, 4]
    assert any(isinstance(c, MaxParams) and c.limit == 30000 for c in space.constraints)
    # a full search config also works: its space: section is used
    cfg = tmp_path / "search.yaml"
    cfg.write_text("space: {name: chain_cnn, depth: 3}\ntrials: 4\n")
    assert load_space(cfg).depth_dim.values() == [3]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: chain_cnn\ndepth: [2, 4\n", "not valid YAML"),
        ("name: nope\n", "unknown space 'nope'"),
        ("name: chain_cnn\nwidth: 3\n", "no option 'width'"),
        ("name: chain_cnn\nlayer: {op: [conv, pool]}\n", "not allowed"),
    ],
)
def test_yaml_space_errors(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_space(path)
