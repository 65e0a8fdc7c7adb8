"""Tests of the chain CNN builder: any valid architecture must run on any input shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.errors import ConfigError, SpaceError
from nasforge.hardware import count_flops, count_params
from nasforge.nn import ACTIVATIONS, CHAIN_OPS, ChainNet, build_chain_cnn, make_activation
from nasforge.nn._layers import Residual

KERNELS = (1, 3, 5, 7)
FILTERS = (4, 8, 16, 32, 64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_params(rng: np.random.Generator, max_depth: int = 8) -> dict[str, Any]:
    """A random valid chain CNN architecture, with some ignorable extra keys mixed in."""
    depth = int(rng.integers(1, max_depth + 1))
    params: dict[str, Any] = {"depth": depth}
    # Layers beyond depth are present in spaces with a variable depth; the builder ignores them.
    for i in range(depth + int(rng.integers(0, 3))):
        op = str(rng.choice(CHAIN_OPS))
        params[f"layer{i}.op"] = op
        params[f"layer{i}.kernel"] = int(rng.choice(KERNELS))
        params[f"layer{i}.stride"] = int(rng.choice([1, 2]))
        params[f"layer{i}.padding"] = str(rng.choice(["same", "valid"]))
        if op in ("conv", "sepconv") or rng.random() < 0.2:  # pool layers may carry stray keys
            params[f"layer{i}.filters"] = int(rng.choice(FILTERS))
            params[f"layer{i}.act"] = str(rng.choice(sorted(ACTIVATIONS)))
            params[f"layer{i}.skip"] = bool(rng.random() < 0.5)
    return params


def layer(op: str, kernel: int = 3, stride: int = 1, padding: str = "same", **extra: Any) -> dict[str, Any]:
    spec = {"op": op, "kernel": kernel, "stride": stride, "padding": padding}
    if op in ("conv", "sepconv"):
        spec |= {"filters": 8, "act": "relu", "skip": False}
    return spec | extra


def chain(*layers: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"depth": len(layers)}
    for i, spec in enumerate(layers):
        params.update({f"layer{i}.{key}": value for key, value in spec.items()})
    return params


def run_layers(model: ChainNet, x: torch.Tensor) -> torch.Tensor:
    """Run the feature layers one by one, checking each output against the plan."""
    for block, info in zip(model.features, model.plan, strict=True):
        x = block(x)
        assert tuple(x.shape[1:]) == (info["out_channels"], *info["out_size"]), info
    return model.classifier(torch.flatten(model.pool(x), 1))


@pytest.mark.parametrize(
    ("input_shape", "n_archs", "seed"),
    [
        ((1, 8, 8), 120, 0),
        ((1, 1, 1), 100, 1),
        ((3, 5, 7), 100, 2),
        ((1, 28, 28), 40, 3),
        ((3, 32, 32), 40, 4),
    ],
)
def test_random_architectures_run_on_any_input_shape(
    input_shape: tuple[int, int, int], n_archs: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    ops_seen: set[str] = set()
    adapted = 0
    for n in range(n_archs):
        params = random_params(rng)
        num_classes = int(rng.integers(1, 12))
        model = build_chain_cnn(params, input_shape, num_classes)
        x = torch.randn(2, *input_shape, generator=gen)
        with torch.no_grad():
            logits = model(x)
            assert torch.equal(run_layers(model, x), logits), params  # train-mode BN: batch stats
        assert logits.shape == (2, num_classes), params
        assert torch.isfinite(logits).all(), params
        assert len(model.plan) == params["depth"]
        ops_seen.update(info["op"] for info in model.plan)
        adapted += any(info["adapted"] for info in model.plan)
        if n % 10 == 0:  # eval mode uses the running statistics: a different code path
            model.eval()
            with torch.no_grad():
                assert torch.isfinite(model(x[:1])).all(), params
    assert ops_seen == set(CHAIN_OPS)
    if input_shape[1] <= 8:
        assert adapted > 0  # small inputs must have exercised the adaptation rule


def test_plan_matches_tensor_shapes_layer_by_layer() -> None:
    rng = np.random.default_rng(10)
    for input_shape in [(2, 9, 4), (1, 3, 3), (3, 16, 1)]:
        for _ in range(20):
            model = build_chain_cnn(random_params(rng), input_shape, 3).eval()
            with torch.no_grad():
                run_layers(model, torch.randn(1, *input_shape))


def test_skip_projection_changes_channels_and_stride() -> None:
    params = chain(layer("conv", 3, 2, "same", filters=16, skip=True))
    model = build_chain_cnn(params, (3, 9, 9), 5)
    (info,) = model.plan
    assert info["shortcut"] == "projection"
    assert info["out_size"] == (5, 5)
    block = model.features[0]
    assert isinstance(block, Residual)
    x = torch.randn(2, 3, 9, 9)
    assert block.shortcut(x).shape == block.body(x).shape == (2, 16, 5, 5)
    assert model(x).shape == (2, 5)


@pytest.mark.parametrize("op", ["conv", "sepconv"])
@pytest.mark.parametrize(("size", "kernel", "stride"), [(11, 5, 2), (10, 3, 2), (7, 7, 1), (8, 3, 1)])
def test_skip_projection_matches_valid_padding(op: str, size: int, kernel: int, stride: int) -> None:
    params = chain(layer(op, kernel, stride, "valid", filters=8, skip=True))
    model = build_chain_cnn(params, (8, size, size), 2)
    (info,) = model.plan
    expected = (size - kernel) // stride + 1
    assert info["padding"] == "valid"
    assert info["out_size"] == (expected, expected)
    # The same channel count but a smaller map still needs a projection.
    assert info["shortcut"] == ("projection" if (kernel, stride) != (1, 1) else "identity")
    block = model.features[0]
    assert isinstance(block, Residual)
    x = torch.randn(2, 8, size, size)
    assert block.shortcut(x).shape == block.body(x).shape == (2, 8, expected, expected)


@pytest.mark.parametrize("op", ["conv", "sepconv"])
def test_identity_shortcut_adds_the_input(op: str) -> None:
    params = chain(layer(op, 3, 1, "same", filters=4, act="gelu", skip=True))
    model = build_chain_cnn(params, (4, 6, 6), 3)
    assert model.plan[0]["shortcut"] == "identity"
    block = model.features[0]
    assert isinstance(block, Residual) and isinstance(block.shortcut, nn.Identity)
    x = torch.randn(2, 4, 6, 6)

    seen: dict[str, torch.Tensor] = {}
    block.body.register_forward_hook(lambda _m, _i, out: seen.__setitem__("body", out))
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(out, seen["body"] + x)

    # With the body's BatchNorm zeroed the body outputs act(0) = 0 and the layer is the identity.
    with torch.no_grad():
        block.body.bn.weight.zero_()
        block.body.bn.bias.zero_()
        torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("op", CHAIN_OPS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_same_padding_keeps_the_size_at_stride_1(op: str, kernel: int) -> None:
    params = chain(layer(op, kernel, 1, "same"), layer(op, kernel, 2, "same"))
    model = build_chain_cnn(params, (2, 9, 12), 4)
    assert [info["out_size"] for info in model.plan] == [(9, 12), (5, 6)]
    with torch.no_grad():
        run_layers(model, torch.randn(2, 2, 9, 12))


def test_stride_2_becomes_stride_1_once_the_map_is_1x1() -> None:
    model = build_chain_cnn(chain(*[layer("conv", 3, 2, "same")] * 6), (1, 8, 8), 10)
    assert [info["stride"] for info in model.plan] == [2, 2, 2, 1, 1, 1]
    assert [info["out_size"] for info in model.plan] == [(4, 4), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1)]
    assert [bool(info["adapted"]) for info in model.plan] == [False] * 3 + [True] * 3
    assert "stride 2->1" in model.plan[3]["adapted"][0]
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert "stride 2->1" in model.summary()


def test_stride_2_is_kept_while_one_dimension_can_shrink() -> None:
    model = build_chain_cnn(chain(layer("maxpool", 3, 2), layer("conv", 3, 2)), (1, 1, 9), 2)
    assert [info["stride"] for info in model.plan] == [2, 2]
    assert [info["out_size"] for info in model.plan] == [(1, 5), (1, 3)]


@pytest.mark.parametrize("op", CHAIN_OPS)
def test_valid_kernel_larger_than_the_map_uses_same_padding(op: str) -> None:
    model = build_chain_cnn(chain(layer(op, 7, 1, "valid")), (2, 3, 3), 4)
    (info,) = model.plan
    assert info["padding"] == "same"
    assert info["out_size"] == (3, 3)
    assert "valid->same" in info["adapted"][0]
    assert model(torch.randn(2, 2, 3, 3)).shape == (2, 4)


def test_valid_kernel_that_fits_is_kept() -> None:
    model = build_chain_cnn(chain(layer("conv", 5, 1, "valid")), (1, 5, 7), 4)
    assert model.plan[0]["padding"] == "valid"
    assert model.plan[0]["out_size"] == (1, 3)
    assert model.plan[0]["adapted"] == ()


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_pool_kernel_is_clamped_without_changing_the_output(op: str) -> None:
    params = chain(layer(op, 7, 1, "same"))
    model = build_chain_cnn(params, (3, 2, 3), 4)
    assert model.plan[0]["kernel"] == 5  # 2 * max(2, 3) - 1
    pool_cls = nn.MaxPool2d if op == "maxpool" else nn.AvgPool2d
    kwargs = {} if op == "maxpool" else {"count_include_pad": False}
    x = torch.randn(2, 3, 2, 3)
    torch.testing.assert_close(model.features[0](x), pool_cls(7, 1, 3, **kwargs)(x))


def test_pool_keeps_channels_and_ignores_conv_keys() -> None:
    params = chain(layer("conv", filters=12), layer("avgpool", 3, 2, filters=99, act="nope", skip=True))
    model = build_chain_cnn(params, (3, 8, 8), 4)
    assert model.plan[1]["out_channels"] == 12
    assert model.plan[1]["act"] is None and model.plan[1]["shortcut"] is None
    assert model.classifier.in_features == 12


def test_meta_build_matches_the_real_build() -> None:
    rng = np.random.default_rng(20)
    for _ in range(15):
        params = random_params(rng)
        real = build_chain_cnn(params, (3, 16, 16), 10)
        meta = build_chain_cnn(params, (3, 16, 16), 10, device="meta")
        assert all(p.is_meta for p in meta.parameters())
        assert all(b.is_meta for b in meta.buffers())
        assert count_params(meta) == count_params(real)
        assert count_flops(meta, (3, 16, 16)) == count_flops(real, (3, 16, 16))
        assert meta.plan == real.plan


def test_parameter_count_of_a_known_architecture() -> None:
    params = chain(
        layer("conv", 3, 1, filters=8, skip=True),  # 3*8*9 + bn 16 + projection 3*8 + bn 16
        layer("sepconv", 5, 2, filters=16),  # dw 8*25 + pw 8*16 + bn 32
        layer("maxpool"),
    )
    model = build_chain_cnn(params, (3, 10, 10), 10)
    expected = (216 + 16 + 24 + 16) + (200 + 128 + 32) + (16 * 10 + 10)
    assert count_params(model) == expected


def test_plan_is_json_friendly_and_summary_lists_every_layer() -> None:
    import json

    model = build_chain_cnn(random_params(np.random.default_rng(5)), (1, 28, 28), 10)
    assert len(json.loads(json.dumps(model.plan))) == len(model.plan)
    assert len(model.summary().splitlines()) == len(model.plan) + 3


def test_numpy_scalars_are_accepted() -> None:
    params = chain(layer("conv", np.int64(3), np.int64(2), filters=np.int64(4), skip=np.bool_(True)))
    model = build_chain_cnn(params, (1, 8, 8), np.int64(3))
    assert model.plan[0]["kernel"] == 3 and type(model.plan[0]["kernel"]) is int
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


GOOD = chain(layer("conv"), layer("maxpool"))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"depth": None}, "depth"),
        ({"depth": 0}, "depth"),
        ({"depth": 3}, "layer2.op"),
        ({"layer1.kernel": None}, "layer1.kernel"),
        ({"layer0.kernel": 4}, "layer0.kernel"),
        ({"layer0.kernel": 3.0}, "layer0.kernel"),
        ({"layer0.op": "dilconv"}, "layer0.op"),
        ({"layer0.act": "sigmoidish"}, "layer0.act"),
        ({"layer0.stride": 3}, "layer0.stride"),
        ({"layer0.stride": True}, "layer0.stride"),
        ({"layer1.padding": "full"}, "layer1.padding"),
        ({"layer0.filters": 0}, "layer0.filters"),
        ({"layer0.filters": None}, "layer0.filters"),
        ({"layer0.skip": "yes"}, "layer0.skip"),
    ],
)
def test_invalid_params_name_the_key(change: dict[str, Any], key: str) -> None:
    params = {k: v for k, v in (GOOD | change).items() if v is not None}
    with pytest.raises(SpaceError, match=f"'{key}'"):
        build_chain_cnn(params, (1, 8, 8), 10)


def test_invalid_params_messages_help() -> None:
    with pytest.raises(SpaceError, match=r"Did you mean 'sepconv'\?"):
        build_chain_cnn(GOOD | {"layer0.op": "sep_conv"}, (1, 8, 8), 10)
    with pytest.raises(SpaceError, match=r"missing parameter 'layer2\.op' \(depth is 3"):
        build_chain_cnn(GOOD | {"depth": 3}, (1, 8, 8), 10)
    with pytest.raises(SpaceError, match="mapping"):
        build_chain_cnn([("depth", 1)], (1, 8, 8), 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("input_shape", [(8, 8), (1, 0, 8), (1, 8, 8.0), "abc"])
def test_invalid_input_shape(input_shape: Any) -> None:
    with pytest.raises(ConfigError, match="input_shape"):
        build_chain_cnn(GOOD, input_shape, 10)


def test_invalid_num_classes() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        build_chain_cnn(GOOD, (1, 8, 8), 0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_make_activation_gives_a_fresh_module(name: str) -> None:
    first, second = make_activation(name), make_activation(name)
    assert isinstance(first, nn.Module) and first is not second
    assert torch.equal(first(torch.zeros(3)), torch.zeros(3))  # act(0) = 0 for every listed one


def test_make_activation_unknown_lists_valid_names() -> None:
    with pytest.raises(SpaceError, match="Did you mean 'hardswish'") as info:
        make_activation("hardswsh")
    assert all(name in str(info.value) for name in ACTIVATIONS)
