"""The detector space: the space contract, and networks that are CenterNets of the planned shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.detect import CenterNet
from nasforge.errors import SpaceError
from nasforge.hardware import count_params
from nasforge.nn import K1KXBlock, RepVGGBlock
from nasforge.registry import SPACES
from nasforge.space import DetectorSpace, space_from_config
from nasforge.testing import SpaceConformance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestDetectorSpace(SpaceConformance):
    @pytest.fixture
    def space(self):
        return DetectorSpace().bind((3, 32, 32), 3)


def test_registered_and_built_as_a_centernet_of_the_plan():
    space = SPACES.create("detector").bind((3, 64, 64), 3)
    assert isinstance(space, DetectorSpace)
    params = dict(space.sample(np.random.default_rng(0)).params)
    params.update(
        {"scales": 3, "stage0.op": "k1kx_rep", "stage0.depth": 2, "stage0.bottleneck": 1.0,
         "stage1.op": "qarep", "stage2.op": "mbconv", "stage2.depth": 1, "stage2.kernel": 3,
         "neck.width": 16, "neck.depth": 1, "head.width": 16, "head.depth": 2}
    )  # fmt: skip
    for s in range(3):
        params.setdefault(f"stage{s}.width", space.dimensions()[f"stage{s}.width"].values()[0])
    model = space.make(params).build()
    assert isinstance(model, CenterNet) and model.stride == 4
    blocks = list(model.backbone.stages[0])
    assert len(blocks) == 2 and all(isinstance(b, K1KXBlock) for b in blocks)
    assert isinstance(blocks[0].conv, RepVGGBlock)  # k1kx_rep
    assert blocks[0].reduce.conv.out_channels == params["stage0.width"]  # bottleneck 1.0
    assert (
        isinstance(model.backbone.stages[1][0], RepVGGBlock)
        and model.backbone.stages[1][0].variant == "qarep"
    )
    assert len(model.backbone.laterals) == 3
    assert len(model.head.heatmap) == 5  # two hidden convs + acts, then out
    out = model(torch.zeros(2, 3, 64, 64))
    assert out["heatmap"].shape == (2, 3, 16, 16) and out["size"].shape == (2, 2, 16, 16)
    # odd sizes: the top-down path resizes to each lateral's map
    assert model(torch.zeros(1, 3, 50, 70))["heatmap"].shape[2:] == (13, 18)


def test_inactive_settings_and_scales():
    space = DetectorSpace().bind((3, 32, 32), 2)
    arch = space.sample(np.random.default_rng(1))
    params = dict(arch.params) | {"scales": 2}
    two = space.make({k: v for k, v in params.items() if not k.startswith("stage2")})
    assert not any(k.startswith("stage2") for k in two.params)
    assert len(two.build().backbone.stages) == 2
    conv = {**two.params, "stage0.op": "conv"}
    assert "stage0.bottleneck" not in space.make(conv).params
    assert (
        space.make({**conv, "stage0.bottleneck": 0.5}).key
        == space.make({**conv, "stage0.bottleneck": 1.0}).key
    )


def test_width_multiplier_and_max_params():
    space = DetectorSpace(max_params=60_000).bind((3, 32, 32), 3)
    rng = np.random.default_rng(2)
    for _ in range(5):
        arch = space.sample(rng)
        assert space.count_params(arch) <= 60_000
    assert count_params(arch.build(width=0.5)) < count_params(arch.build())
    again = space_from_config(space.to_dict())
    assert again.max_params == 60_000 and again.to_dict() == space.to_dict()


def test_bad_options_say_what_is_allowed():
    with pytest.raises(SpaceError, match="one of"):
        DetectorSpace(block={"op": ["conv", "transformer"]})
    with pytest.raises(SpaceError, match="odd"):
        DetectorSpace(block={"kernel": [2]})
    with pytest.raises(SpaceError, match="2 or 3 stages"):
        DetectorSpace(stages=[{"width": [8]}])
    with pytest.raises(SpaceError, match="scales"):
        DetectorSpace(scales=[4])
    with pytest.raises(SpaceError, match="no setting"):
        DetectorSpace(block={"expand": [3]})
