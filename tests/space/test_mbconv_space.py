"""The MBConv macro space: every sampled block runs, inactive blocks do not matter, scaling grows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import SpaceError
from nasforge.hardware import count_params
from nasforge.nn._mbconv import MBConvBlock, SqueezeExcite
from nasforge.space import Architecture, MBConvSpace, compound_scale, space_from_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def space():
    return MBConvSpace().bind((1, 28, 28), 10)


def test_sampled_architectures_build_and_run(space):
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(8):
        arch = space.sample(rng)
        net = arch.build()
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert count_params(arch.build(device="meta")) == count_params(net)
        blocks = [m for m in net.modules() if isinstance(m, MBConvBlock)]
        assert len(blocks) == sum(arch.params[f"stage{s}.depth"] for s in range(4))
        kinds |= {(b.residual, any(isinstance(m, SqueezeExcite) for m in b.modules())) for b in blocks}
    assert kinds == {(True, True), (True, False), (False, True), (False, False)}
    assert arch.build(input_shape=(3, 32, 32), num_classes=5)(torch.zeros(1, 3, 32, 32)).shape == (1, 5)


def test_inactive_blocks_do_not_change_the_key(space):
    arch = space.sample(np.random.default_rng(1))
    params = dict(arch.params)
    params["stage0.depth"] = 1
    one = space.make(params)
    params["stage0.block2.kernel"] = 7 if params.get("stage0.block2.kernel") != 7 else 3
    assert space.make(params).key == one.key
    assert "stage0.block2.kernel" not in one.params


def test_block_choices_change_the_network(space):
    params = dict(space.sample(np.random.default_rng(2)).params)
    params.update({"stage3.block0.se": False, "stage3.block0.expand": 1, "stage3.block0.kernel": 3})
    small = count_params(space.make(params, check_constraints=False).build())
    params.update({"stage3.block0.se": True, "stage3.block0.expand": 6, "stage3.block0.kernel": 7})
    assert count_params(space.make(params, check_constraints=False).build()) > small


def test_config_round_trip_and_errors():
    space = space_from_config(
        {"name": "mbconv", "depth": [1, 2], "block": {"kernel": [3, 5]}, "max_params": 80000}
    )
    arch = space.bind((1, 28, 28), 10).sample(np.random.default_rng(0))
    assert Architecture.from_dict(arch.to_dict()).key == arch.key
    assert arch.params["stage0.block0.kernel"] in (3, 5)
    with pytest.raises(SpaceError, match="no setting"):
        MBConvSpace(block={"dilation": [1, 2]})
    with pytest.raises(SpaceError, match="stride"):
        MBConvSpace(stages=[{"width": [8], "stride": 3}])


def test_compound_scaling_grows_depth_width_and_resolution(space):
    arch = space.sample(np.random.default_rng(3))
    params, width, resolution = compound_scale(arch.params, 2, space=space, resolution=28)
    for s in range(4):
        depth = arch.params[f"stage{s}.depth"]
        assert params[f"stage{s}.depth"] == int(np.ceil(depth * 1.2**2))
        last = {k: arch.params[f"stage{s}.block{depth - 1}.{k}"] for k in ("kernel", "expand", "se", "act")}
        for b in range(depth, params[f"stage{s}.depth"]):
            assert {k: params[f"stage{s}.block{b}.{k}"] for k in last} == last
    assert width == pytest.approx(1.21) and resolution == 38
    deep = MBConvSpace(depth=[1, 2, 3, 4, 5]).bind((1, resolution, resolution), 10)
    bigger = deep.make(params, check_constraints=False).build(width=width)
    assert count_params(bigger) > count_params(arch.build())
    assert bigger(torch.zeros(1, 1, resolution, resolution)).shape == (1, 10)
    assert compound_scale(arch.params, 0, space=space, resolution=28)[0] == dict(arch.params)
