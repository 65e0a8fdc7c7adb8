"""AZ-NAS, MeCo, ZiCo and SWAP: hand-computed values on tiny networks, the proxy contract everywhere."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nasforge as nf
from nasforge.estimate import PROXIES, compute_proxies, log_rank_vote, rank_vote
from nasforge.estimate._proxies_frontier import (
    FRONTIER_PROXIES,
    SWAP_SAMPLES,
    feature_blocks,
    swap_size_factor,
)
from nasforge.hardware import count_params
from nasforge.nn import build_nb201_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRONTIER = sorted(FRONTIER_PROXIES)
BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
EMPTY_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


def _entropy(p: list[float]) -> float:
    return -sum(q * math.log(q + 1e-8) for q in p)


# ----------------------------------------------------------------------------- AZ-NAS by hand
def test_expressivity_and_progressivity_are_the_covariance_entropies() -> None:
    # Centred inputs with covariance diag(0.5, 2): eigenvalue shares 0.2 / 0.8. The second block
    # halves channel 1, giving covariance diag(0.5, 0.5): shares 0.5 / 0.5.
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    net = nn.Sequential(_linear([[1.0, 0.0], [0.0, 1.0]]), _linear([[1.0, 0.0], [0.0, 0.5]]))
    s = compute_proxies(net, x, names=["az_expressivity", "az_progressivity"])
    e1, e2 = _entropy([0.2, 0.8]), _entropy([0.5, 0.5])
    assert s["az_expressivity"] == pytest.approx(e1 + e2, rel=1e-9)
    assert s["az_progressivity"] == pytest.approx(e2 - e1, rel=1e-9)


@pytest.mark.parametrize("gain", [0.5, 3.0])
def test_trainability_of_a_scaling_block_is_two_minus_s_minus_one_over_s(gain: float) -> None:
    # One channel: the back-propagated Rademacher vector is multiplied by the gain, and
    # E[g_in g_out] = gain exactly (g_out^2 = 1), whatever the draw.
    net = nn.Sequential(_linear([[1.0]]), _linear([[gain]]))
    score = compute_proxies(net, torch.randn(8, 1), names=["az_trainability"])["az_trainability"]
    assert score == pytest.approx(2 - gain - 1 / (gain + 1e-6), rel=1e-9)


def test_trainability_of_an_identity_block_is_minus_infinity_as_in_the_reference() -> None:
    net = nn.Sequential(_linear([[1.0, 0.0], [0.0, 1.0]]), _linear([[1.0, 0.0], [0.0, 1.0]]))
    assert compute_proxies(net, torch.randn(6, 2), names=["az_trainability"])["az_trainability"] == -math.inf


def test_blocks_are_the_nb201_stem_and_its_17_cells() -> None:
    net = build_nb201_network(BEST_CELL, (3, 8, 8), 10, C=4, N=5)
    blocks = feature_blocks(net)
    assert blocks[0] is net.stem and blocks[1:] == list(net.cells) and len(blocks) == 18


def test_a_cell_of_none_edges_has_no_expressivity() -> None:
    torch.manual_seed(0)
    net = build_nb201_network(EMPTY_CELL, (3, 8, 8), 10, C=4, N=1)
    s = compute_proxies(net, torch.randn(4, 3, 8, 8), names=["az_expressivity", "az_progressivity"])
    assert s == {"az_expressivity": -math.inf, "az_progressivity": -math.inf}


# ----------------------------------------------------------------------------- MeCo by hand
def test_meco_is_the_min_eigenvalue_of_the_channel_correlation_counted_per_module() -> None:
    # One sample, two channels over three positions with correlation r: eigenvalues 1 -+ r.
    # The Sequential and its Identity both output the feature map: it counts twice (the reference
    # hooks every module, containers included).
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])
    r = float(torch.corrcoef(torch.stack([a, b]).double())[0, 1])
    x = torch.stack([a, b]).reshape(1, 2, 1, 3).repeat(2, 1, 1, 1)
    x[1] = -x[1]  # only the first sample is read
    net = nn.Sequential(nn.Identity())
    s = compute_proxies(net, x, names=["meco", "meco_opt"])
    assert s["meco"] == pytest.approx(2 * (1 - r), rel=1e-9)
    assert s["meco_opt"] == pytest.approx(s["meco"], rel=1e-9)  # <= 8 channels: all of them, factor 1


def test_meco_of_a_constant_channel_is_zero_and_one_position_maps_are_skipped() -> None:
    x = torch.zeros(1, 2, 1, 3)
    x[0, 0] = torch.tensor([1.0, 2.0, 3.0])  # channel 1 constant: its correlations are set to 0
    assert compute_proxies(nn.Sequential(nn.Identity()), x, names=["meco"])["meco"] == pytest.approx(0.0)
    assert compute_proxies(nn.Sequential(nn.Identity()), torch.randn(1, 4, 1, 1), names=["meco"]) == {
        "meco": 0.0
    }


# ----------------------------------------------------------------------------- ZiCo by hand
def test_zico_is_the_log_of_summed_mean_over_std_of_two_half_batch_gradients() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 2, bias=False))
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 1, 0, 1, 0])
    g = [
        torch.autograd.grad(F.cross_entropy(net(x[i : i + 3]), y[i : i + 3]), net[0].weight)[0]
        for i in (0, 3)
    ]
    # two values: mean |g| / std = (|g1| + |g2|) / |g1 - g2|
    expected = math.log(((g[0].abs() + g[1].abs()) / (g[0] - g[1]).abs()).sum().item())
    assert compute_proxies(net, x, y, names=["zico"])["zico"] == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- SWAP by hand
def test_swap_counts_distinct_sample_wise_patterns_of_the_first_16_samples() -> None:
    # Unit patterns over 3 samples: (1,1,0), (1,0,1), (0,0,1), (1,1,0) -> 3 distinct.
    x = torch.tensor([[1.0, 1.0, -1.0, 2.0], [1.0, -1.0, -1.0, 3.0], [-1.0, 1.0, 1.0, -1.0]])
    net = nn.Sequential(nn.ReLU())
    assert compute_proxies(net, x, names=["swap"])["swap"] == 3.0
    big = torch.randn(SWAP_SAMPLES + 4, 64)
    changed = big.clone()
    changed[SWAP_SAMPLES:] = -changed[SWAP_SAMPLES:]
    assert compute_proxies(net, big, names=["swap"]) == compute_proxies(net, changed, names=["swap"])


def test_swap_reg_is_swap_times_the_size_factor() -> None:
    torch.manual_seed(0)
    net = build_nb201_network(BEST_CELL, (3, 8, 8), 10, C=4, N=1)
    s = compute_proxies(net, torch.randn(8, 3, 8, 8), names=["swap", "swap_reg"])
    assert s["swap_reg"] == pytest.approx(s["swap"] * swap_size_factor(count_params(net)), rel=1e-12)
    assert swap_size_factor(2_000_000, mu=2000.0, sigma=1.0) == 1.0
    assert swap_size_factor(1_000, mu=3.0, sigma=4.0) == pytest.approx(math.exp(-1.0))


# ----------------------------------------------------------------------------- the contract
def _nets() -> list[tuple[str, nn.Module, tuple[int, int, int]]]:
    out = []
    for name, shape in (("nb201", (3, 8, 8)), ("chain_cnn", (1, 12, 12)), ("mbconv", (3, 16, 16))):
        space = nf.registry.SPACES.create(name) if name != "nb201" else nf.spaces.NB201Space(C=4, N=1)
        arch = space.sample(np.random.default_rng(1))
        torch.manual_seed(0)
        out.append((name, arch.build(shape, 10), shape))
    return out


@pytest.mark.parametrize(("space", "net", "shape"), _nets(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_frontier_proxy_keeps_the_contract_on_every_built_in_space(
    space: str, net: nn.Module, shape: tuple[int, int, int]
) -> None:
    assert set(FRONTIER) <= set(PROXIES)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, *shape, generator=g), torch.randint(0, 10, (8,), generator=g)
    state = copy.deepcopy(net.state_dict())
    modes = [m.training for m in net.modules()]
    torch.manual_seed(5)
    draw = torch.rand(2)
    torch.manual_seed(5)
    a = compute_proxies(net, x, y, names=FRONTIER, seed=4)
    assert torch.equal(torch.rand(2), draw)  # the global generator is left alone
    assert list(a) == FRONTIER and all(isinstance(v, float) for v in a.values())
    assert all(not math.isnan(v) for v in a.values()), (space, a)
    assert compute_proxies(net, x, y, names=FRONTIER, seed=4) == a  # deterministic
    for name in FRONTIER:  # alone, each gives what it gives among the others
        assert compute_proxies(net, x, y, names=[name], seed=4) == {name: a[name]}
    after = net.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert [m.training for m in net.modules()] == modes


def test_meco_works_where_batch_norm_sees_one_value_per_channel() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    assert math.isfinite(compute_proxies(net, torch.randn(4, 3, 3, 3), names=["meco"])["meco"])


def test_zico_needs_labels_and_two_samples() -> None:
    net = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(nf.errors.ConfigError, match=r"proxies \['zico'\] use labels"):
        compute_proxies(net, torch.randn(4, 3), names=["zico"])
    with pytest.raises(nf.errors.DataError, match="zico compare samples"):
        compute_proxies(net, torch.randn(1, 3), torch.tensor([0]), names=["zico"])


# ----------------------------------------------------------------------------- aggregation
def test_log_rank_vote_is_the_sum_of_log_rank_fractions() -> None:
    records = [{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 1.0}, {"a": 3.0, "b": 2.0}, {"a": math.nan, "b": 4.0}]
    # ranks a: 2, 3, 4, 1 (nan worst); b: 3, 1, 2, 4
    expected = [math.log(2 / 4 * 3 / 4), math.log(3 / 4 * 1 / 4), math.log(4 / 4 * 2 / 4), math.log(1 / 4)]
    assert log_rank_vote(records).tolist() == pytest.approx(expected)
    # where the mean-rank vote ties two architectures, the log-rank one prefers the balanced one
    balanced = [{"a": 2.0, "b": 2.0}, {"a": 3.0, "b": 1.0}, {"a": 1.0, "b": 3.0}]
    assert rank_vote(balanced)[0] == rank_vote(balanced)[1]
    assert log_rank_vote(balanced)[0] > log_rank_vote(balanced)[1]
