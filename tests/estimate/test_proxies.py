"""Zero-cost proxies: closed forms on tiny networks, invariances, isolation, the estimator, ensembles."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nasforge as nf
from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.estimate import (
    DEFAULT_PROXIES,
    PROXIES,
    ProxyEnsemble,
    TrialContext,
    ZeroCostEstimator,
    compute_proxies,
    rank_vote,
    ranks,
)
from nasforge.estimate._proxies import fisher, grad_norm, grasp, jacob_cov, naswot, snip, synflow
from nasforge.hardware import count_flops, count_params
from nasforge.nn import build_nb201_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
EMPTY_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _mlp(seed: int = 0, bias: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5, bias=bias), nn.ReLU(), nn.Linear(5, 3, bias=bias))


def _batch(n: int = 8, d: int = 4, classes: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def _tiny_nb201(cell: str = BEST_CELL, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_nb201_network(cell, (3, 8, 8), 10, C=4, N=1)


def _grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, dL/dweight) of the linear layers, by plain autograd on a copy in train mode."""
    net = copy.deepcopy(net).train()
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights)
    return list(zip(weights, grads, strict=True))


# ----------------------------------------------------------------------------- closed forms
def test_synflow_of_a_two_layer_net_is_the_closed_form() -> None:
    # f(x) = W2 relu(W1 x + b1) + b2 with |w| and x = 1: R = 1'(|W2|(|W1|1 + |b1|) + |b2|), so
    # sum|W1 * dR/dW1| = 1'|W2||W1|1 and sum|W2 * dR/dW2| = 1'|W2|(|W1|1 + |b1|).
    net = _mlp(3)
    w1, b1 = net[0].weight.detach().double().abs(), net[0].bias.detach().double().abs()
    w2 = net[2].weight.detach().double().abs()
    ones = torch.ones(4, dtype=torch.float64)
    expected = 2 * (w2 @ w1 @ ones).sum() + (w2 @ b1).sum()
    x = -torch.randn(6, 4)  # synflow ignores the values (all-ones input)
    assert synflow(net, x) == pytest.approx(expected.item(), rel=1e-12)


def test_synflow_removes_batch_norm_and_is_layer_rescaling_invariant() -> None:
    net = _mlp(4, bias=False)
    x = torch.randn(5, 4)
    base = synflow(net, x)
    with_bn = nn.Sequential(net[0], nn.BatchNorm1d(5), net[1], net[2])
    with torch.no_grad():
        with_bn[1].weight.fill_(7.0)  # ignored: BatchNorm is removed for synflow
    assert synflow(with_bn, x) == pytest.approx(base, rel=1e-12)
    scaled = copy.deepcopy(net)
    with torch.no_grad():  # a ReLU net without biases computes the same function; synflow agrees
        scaled[0].weight.mul_(8.0)
        scaled[2].weight.div_(8.0)
    assert synflow(scaled, x) == pytest.approx(base, rel=1e-12)


def test_snip_and_grad_norm_are_the_hand_computed_sums() -> None:
    net = _mlp(5)
    x, y = _batch()
    pairs = _grads(net, x, y)
    assert snip(net, x, y) == pytest.approx(sum((w * g).abs().sum().item() for w, g in pairs), rel=1e-6)
    assert grad_norm(net, x, y) == pytest.approx(sum(g.norm().item() for _, g in pairs), rel=1e-6)


def test_fisher_of_a_linear_layer_is_the_hand_computed_value() -> None:
    torch.manual_seed(6)
    net = nn.Linear(4, 3)
    x, y = _batch()
    z = net(x)
    (g,) = torch.autograd.grad(F.cross_entropy(z, y), z)
    expected = 0.5 * (z.detach() * g).pow(2).mean(0).sum().item() * 4  # fan-in 4 per output
    assert fisher(net, x, y) == pytest.approx(expected, rel=1e-6)


def test_grasp_is_minus_w_hessian_gradient() -> None:
    torch.manual_seed(7)
    net = nn.Linear(3, 2, bias=False)
    x, y = _batch(d=3, classes=2)
    w0 = net.weight.detach().clone()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(x @ flat.view(2, 3).T, y)

    flat = w0.flatten()
    hessian = torch.autograd.functional.hessian(loss, flat)
    g = torch.autograd.functional.jacobian(loss, flat)
    expected = -(flat * (hessian @ g)).sum().item()
    assert grasp(net, x, y) == pytest.approx(expected, rel=1e-5)


def test_naswot_is_the_log_det_of_the_hamming_kernel() -> None:
    net = nn.Sequential(nn.ReLU())  # codes are the signs of the inputs themselves
    x = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, -1.0, 2.0]])
    codes = (x > 0).double()
    k = 3 - torch.cdist(codes, codes, p=1)  # units minus Hamming distance: [[3,2,1],[2,3,2],[1,2,3]]
    assert naswot(net, x) == pytest.approx(math.log(torch.linalg.det(k).item()), rel=1e-12)
    assert naswot(net, x) == pytest.approx(math.log(8.0))
    assert naswot(net, x[[2, 0, 1]]) == pytest.approx(math.log(8.0))  # sample order does not matter
    assert naswot(net, 5 * x) == pytest.approx(math.log(8.0))  # nor a positive input scale


def test_naswot_of_identical_activation_patterns_is_minus_infinity() -> None:
    net = _mlp(8)
    x = torch.randn(1, 4).repeat(6, 1)  # every sample has the same code: K = N_A * ones, singular
    assert naswot(net, x) == -math.inf


def test_jacob_cov_of_a_linear_net_has_the_closed_form() -> None:
    # Every sample's Jacobian of sum(f) is W' 1: identical rows, correlation all ones,
    # eigenvalues n and 0 (n - 1 times).
    torch.manual_seed(9)
    net = nn.Linear(5, 3)
    n, k = 6, 1e-5
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    assert jacob_cov(net, torch.randn(n, 5)) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_is_nan_when_the_output_ignores_the_input() -> None:
    x = torch.randn(4, 3, 8, 8)
    assert math.isnan(jacob_cov(_tiny_nb201(EMPTY_CELL), x))


def test_params_and_flops_are_the_counts() -> None:
    net = _tiny_nb201()
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    scores = compute_proxies(net, x, y, names=["params", "flops"])
    assert scores == {"params": count_params(net), "flops": count_flops(net, (3, 8, 8))}


# ----------------------------------------------------------------------------- the contract
def test_all_proxies_deterministic_finite_and_in_order_on_nb201() -> None:
    net = _tiny_nb201()
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,))
    a = compute_proxies(net, x, y, seed=3)
    assert list(a) == list(DEFAULT_PROXIES) == list(PROXIES)[: len(DEFAULT_PROXIES)]  # the classic nine
    assert all(math.isfinite(v) for v in a.values()), a
    assert compute_proxies(net, x, y, seed=3) == a
    # one proxy alone gives what it gives among all the others (the passes are seeded separately)
    assert compute_proxies(net, x, y, names=["grasp", "naswot"], seed=3) == {
        "grasp": a["grasp"],
        "naswot": a["naswot"],
    }


def test_the_seed_drives_layers_that_draw_random_numbers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 3))
    x, y = _batch()
    assert snip(net, x, y, seed=1) == snip(net, x, y, seed=1)
    assert snip(net, x, y, seed=1) != snip(net, x, y, seed=2)


def test_the_model_and_the_global_rng_are_left_unchanged() -> None:
    net = _tiny_nb201()
    net.eval()
    net.cells[0].train()  # a mixed mode to restore
    net.classifier.bias.requires_grad_(False)
    net.stem.conv.weight.grad = torch.full_like(net.stem.conv.weight, 0.25)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))
    torch.manual_seed(11)
    expected_draw = torch.rand(3)
    torch.manual_seed(11)
    compute_proxies(net, x, y)
    assert torch.equal(torch.rand(3), expected_draw)
    after = net.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)  # running statistics included
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    for before, p in zip(grads, net.parameters(), strict=True):
        assert (before is None and p.grad is None) or torch.equal(before, p.grad)


def test_unknown_or_impossible_requests_raise_clear_errors() -> None:
    net, (x, y) = _mlp(), _batch()
    with pytest.raises(UnknownComponentError, match=r"unknown proxy 'synflw'\. Did you mean 'synflow'\?"):
        compute_proxies(net, x, y, names=["synflw"])
    with pytest.raises(ConfigError, match="Valid proxy names: synflow, naswot"):
        ZeroCostEstimator(proxies=["nope"])
    with pytest.raises(ConfigError, match=r"proxies \['snip'\] use labels"):
        compute_proxies(net, x, names=["synflow", "snip"])
    with pytest.raises(DataError, match="at least 2 inputs"):
        naswot(net, x[:1])
    with pytest.raises(DataError, match=r"targets must have shape \(8,\)"):
        snip(net, x, y[:3])


def test_a_full_nb201_network_is_scored_in_seconds() -> None:
    torch.manual_seed(0)
    net = build_nb201_network(BEST_CELL, (3, 32, 32), 10)  # the largest NB201 network
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    start = time.perf_counter()
    scores = compute_proxies(net, x, y, names=[n for n in DEFAULT_PROXIES if n != "grasp"])
    assert time.perf_counter() - start < 15  # ~1.5 s on one idle core; generous for busy machines
    assert scores["params"] == 1_073_466 and all(math.isfinite(v) for v in scores.values())


# ----------------------------------------------------------------------------- the estimator
def test_zero_cost_estimator_through_experiment_run() -> None:
    task = nf.datasets.load("digits")
    space = nf.spaces.NB201Space(C=4, N=1)
    est = ZeroCostEstimator(task, proxies=["synflow", "naswot", "snip", "params"], batch_size=16, threads=1)
    exp = nf.Experiment("zc", space=space, objectives=["synflow"], seed=0)
    exp.run(strategy="random", estimator=est, n_trials=4)
    done = [t for t in exp.trials if t.state is nf.TrialState.COMPLETE]
    assert len(done) >= 1 and len(exp.trials) == 4
    for t in done:
        assert set(t.metrics) >= {"synflow", "naswot", "snip", "params", "proxy_seconds"}
    again = est.evaluate(done[0].architecture, TrialContext(done[0].number, exp.trial_seed(done[0].number)))
    assert {k: again[k] for k in ("synflow", "naswot", "snip")} == {
        k: done[0].metrics[k] for k in ("synflow", "naswot", "snip")
    }


DEVICE_KEYS = {"device", "device_name", "amp", "torch_version", "cuda_version"}  # where it ran


def test_zero_cost_estimator_by_name_uses_random_inputs_of_the_bound_space() -> None:
    from nasforge.registry import ESTIMATORS

    assert ESTIMATORS.get("zc") is ESTIMATORS.get("proxies") is ZeroCostEstimator
    est = ESTIMATORS.create("zero_cost", proxies=["jacob_cov", "flops"], batch_size=4, threads=1)
    space = nf.spaces.NB201Space(C=4, N=1).bind((3, 8, 8), 10)
    m = est.evaluate(space.from_arch_str(BEST_CELL), TrialContext(0, seed=0))
    assert set(m) == {"jacob_cov", "flops", "proxy_seconds"} | DEVICE_KEYS and math.isfinite(m["jacob_cov"])
    x, _ = est.batch((3, 8, 8), 10)
    assert x.shape == (4, 3, 8, 8)
    with pytest.raises(ConfigError, match="needs the input shape"):
        est.evaluate(nf.spaces.NB201Space().from_arch_str(BEST_CELL), TrialContext(0, seed=0))


# ----------------------------------------------------------------------------- ensembles
def test_ranks_and_rank_vote() -> None:
    assert ranks([3.0, -math.inf, math.nan, 3.0, 7.0]).tolist() == [3.5, 1.5, 1.5, 3.5, 5.0]
    records = [{"a": 1.0, "b": 9.0}, {"a": 2.0, "b": 8.0}, {"a": 3.0, "b": math.nan}]
    assert rank_vote(records).tolist() == [2.0, 2.0, 2.0]
    assert rank_vote(records, ["a"]).tolist() == [1.0, 2.0, 3.0]


def test_proxy_ensemble_learns_the_informative_proxy_and_predicts_per_row() -> None:
    rng = np.random.default_rng(0)
    acc = rng.random(80)
    records = [{"good": 1e40 * a + 1e39 * rng.random(), "noise": rng.random()} for a in acc]
    model = ProxyEnsemble(alpha=0.1).fit(records[:60], acc[:60])
    assert model.proxies_ == ["good", "noise"] and model.coef_[0] > 5 * abs(model.coef_[1])
    pred = model.predict(records[60:])
    rho = np.corrcoef(ranks(pred), ranks(acc[60:]))[0, 1]
    assert rho > 0.8
    assert model.predict(records[60:61])[0] == pytest.approx(pred[0])  # independent of the batch
    with pytest.raises(ConfigError, match="not fitted"):
        ProxyEnsemble().predict(records)
