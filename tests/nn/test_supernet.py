"""The NB201 supernet: every path is the stand-alone network, and the mixture / hard modes agree with it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nasforge.errors import ConfigError, SpaceError
from nasforge.nn import build_nb201_network
from nasforge.nn._supernet import NB201SuperNet, recalibrate_bn
from nasforge.space._nb201 import NB201_OPS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CELLS = [
    ("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"),
    ("none",) * 6,
    ("skip_connect",) * 6,
    ("nor_conv_1x1", "none", "nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect"),
]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    supernet = NB201SuperNet((1, 12, 12), 5, C=4, N=2)
    return _randomize_bn(supernet).eval()


def _randomize_bn(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, so a wrong copy would show."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: "-".join(op[:4] for op in c))
def test_a_path_equals_the_standalone_network_with_copied_weights(net, cell):
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    standalone = net.extract(cell).eval()
    assert standalone.ops == cell
    with torch.no_grad():
        torch.testing.assert_close(net(x, path=cell), standalone(x), rtol=0, atol=1e-6)


def test_extracted_network_has_the_benchmark_layout(net):
    cell = CELLS[0]
    fresh = build_nb201_network(cell, (1, 12, 12), 5, C=4, N=2)
    assert net.extract(cell).state_dict().keys() == fresh.state_dict().keys()


def test_one_hot_mixture_equals_the_path(net):
    x = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    for cell in CELLS:
        weights = torch.zeros(6, len(NB201_OPS))
        for e, op in enumerate(cell):
            weights[e, NB201_OPS.index(op)] = 1.0
        with torch.no_grad():
            torch.testing.assert_close(net(x, weights=weights), net(x, path=cell), rtol=0, atol=1e-6)


def test_hard_mode_runs_the_sampled_path_and_passes_gradient_to_every_weight(net):
    x = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    cell = CELLS[0]
    index = [NB201_OPS.index(op) for op in cell]
    logits = torch.randn(6, len(NB201_OPS), requires_grad=True)
    probs = torch.softmax(logits, dim=1)
    one_hot = torch.zeros_like(probs).scatter_(1, torch.tensor(index)[:, None], 1.0)
    hard = one_hot - probs.detach() + probs  # value: exactly one-hot
    out = net(x, hard=(index, hard))
    with torch.no_grad():
        torch.testing.assert_close(out, net(x, path=cell), rtol=0, atol=1e-6)
    out.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert (logits.grad.abs().sum(dim=1) > 0).sum() >= 4  # edges feeding the output get gradient


def test_recalibrated_bn_holds_the_exact_average_of_the_batches():
    torch.manual_seed(0)
    supernet = NB201SuperNet((1, 8, 8), 3, C=4, N=1)
    batches = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    supernet.stem.bn.momentum = 0.1
    supernet.eval()
    used = recalibrate_bn(supernet, batches, forward=lambda x: supernet(x, path=CELLS[0]))
    assert used == 3
    with torch.no_grad():
        feats = torch.cat([supernet.stem.conv(b) for b in batches])  # equal-size batches
    torch.testing.assert_close(supernet.stem.bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert supernet.stem.bn.momentum == 0.1  # restored
    assert not supernet.training  # its mode is restored too


def test_bad_calls_are_clear_errors(net):
    x = torch.zeros(1, 1, 12, 12)
    with pytest.raises(ConfigError, match="exactly one of"):
        net(x)
    with pytest.raises(ConfigError, match="shape"):
        net(x, weights=torch.ones(6, 3))
    with pytest.raises(SpaceError, match="no operation"):
        NB201SuperNet((1, 8, 8), 3, ops=["none", "skip_connect"], C=2, N=1).extract(CELLS[0])
    with pytest.raises(ConfigError, match="ops"):
        NB201SuperNet((1, 8, 8), 3, ops=["conv7x7"])


def test_every_cell_of_a_small_alphabet_extracts():
    torch.manual_seed(0)
    ops = ("none", "skip_connect", "nor_conv_1x1")
    supernet = NB201SuperNet((1, 6, 6), 2, ops=ops, C=2, N=1).eval()
    x = torch.randn(2, 1, 6, 6)
    rng = np.random.default_rng(0)
    cells = list(itertools.product(ops, repeat=6))
    for i in rng.choice(len(cells), 40, replace=False):
        cell = cells[i]
        with torch.no_grad():
            torch.testing.assert_close(
                supernet(x, path=cell), supernet.extract(cell).eval()(x), rtol=0, atol=1e-6
            )


def test_chain_supernet_paths_equal_standalone_networks():
    from nasforge.nn._chain_supernet import ChainSuperNet
    from nasforge.space import ChainCNN

    space = ChainCNN(depth=(1, 4), layer={"padding": ["same", "valid"], "filters": [4, 8]})
    torch.manual_seed(0)
    supernet = _randomize_bn(ChainSuperNet(space, (2, 11, 11), 3)).eval()
    x = torch.randn(3, 2, 11, 11, generator=torch.Generator().manual_seed(4))
    rng = np.random.default_rng(0)
    shortcuts, outputs = set(), []
    for _ in range(60):
        params = space.sample(rng).params
        standalone = supernet.extract(params).eval()
        shortcuts |= {layer["shortcut"] for layer in standalone.plan}
        with torch.no_grad():
            out = supernet(x, path=params)
            torch.testing.assert_close(out, standalone(x), rtol=0, atol=1e-5)
        outputs.append(out)
    assert {"identity", "projection", None} <= shortcuts  # every kind of layer was exercised
    assert len({round(float(o.sum()), 4) for o in outputs}) > 30  # the paths really differ


def test_chain_supernet_shares_weights_by_weighted_layer_count():
    """The j-th weighted layer uses slot j wherever pooling puts it, and the head follows the count."""
    from nasforge.nn._chain_supernet import ChainSuperNet
    from nasforge.space import ChainCNN

    space = ChainCNN(depth=(1, 3), layer={"filters": [4, 8], "skip": [False]})
    supernet = ChainSuperNet(space, (1, 8, 8), 3)

    def params(*ops: str) -> dict[str, object]:
        p: dict[str, object] = {"depth": len(ops)}
        for i, op in enumerate(ops):
            p |= {f"layer{i}.op": op, f"layer{i}.kernel": 3, f"layer{i}.stride": 1}
            p[f"layer{i}.padding"] = "same"
            if op in ("conv", "sepconv"):
                p |= {f"layer{i}.filters": 8, f"layer{i}.act": "relu", f"layer{i}.skip": False}
        return p

    pooled = params("maxpool", "conv", "avgpool")
    assert ChainSuperNet.slots(supernet.plan(pooled)) == [0, 0, 1]
    assert ChainSuperNet.slots(supernet.plan(params("conv", "maxpool", "sepconv"))) == [0, 1, 1]
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    supernet.eval()
    with torch.no_grad():
        before = supernet(x, path=pooled)
        supernet.layers[1].conv.zero_()  # position 1's conv is not slot 0's: no change
        supernet.heads[2].weight.zero_()  # nor is the head of two weighted layers
        torch.testing.assert_close(supernet(x, path=pooled), before, rtol=0, atol=0)
        supernet.heads[1].bias.add_(1.0)  # the head of one weighted layer is the one used
        torch.testing.assert_close(supernet(x, path=pooled), before + 1.0)
        supernet.layers[0].conv.mul_(-1.0)  # slot 0 is
        assert not torch.allclose(supernet(x, path=pooled), before + 1.0)


def test_chain_supernet_needs_a_chain_space():
    from nasforge.nn._chain_supernet import ChainSuperNet

    with pytest.raises(ConfigError, match="chain_cnn"):
        ChainSuperNet(object(), (1, 8, 8), 2)
