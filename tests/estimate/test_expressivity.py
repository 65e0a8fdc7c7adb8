"""The MAE-DET closed-form score: a hand-computed value, the registered proxy, its use in searches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.data import load_detection
from nasforge.estimate import PROXIES, ProxyScorer, ZeroCostEstimator, compute_proxies
from nasforge.estimate._expressivity import backbone_terms, mae_det, mae_det_score
from nasforge.space import DetectorSpace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

_ROOT = Path(__file__).resolve().parents[2]
BENCH = next(  # ../shared beside the repository, or two levels up from a worktree
    (p / "shared" / "benchmarks" for p in (_ROOT.parent, _ROOT.parent.parent) if (p / "shared").is_dir()),
    _ROOT.parent / "shared" / "benchmarks",
)


def _stage(op, width, depth, kernel, bottleneck=None):
    return {"op": op, "width": width, "depth": depth, "kernel": kernel, "bottleneck": bottleneck, "stride": 2}


def test_hand_computed_value():
    # stem 3x3 from 3 channels to 8; stage 0: one k1kx block 8 -> 16, bottleneck 0.5 (8), 5x5;
    # stage 1: one mbconv block 16 -> 32, 3x3, expansion 3 (48 hidden).
    plan = {"stem": 8, "stages": [_stage("k1kx", 16, 1, 5, 0.5), _stage("mbconv", 32, 1, 3)]}
    s0 = 0.5 * math.log(3 * 9) + 0.5 * math.log(8 * 1) + 0.5 * math.log(8 * 25)
    s1 = s0 + 0.5 * math.log(16) + 0.5 * math.log(9) + 0.5 * math.log(48)
    terms = backbone_terms(plan, 3)
    assert [c for _, c in terms] == [16, 32]
    assert [s for s, _ in terms] == pytest.approx([s0, s1])
    expected = (math.log(16) + s0) + 6 * (math.log(32) + s1)
    assert mae_det_score(plan, 3) == pytest.approx(expected, rel=1e-12)
    assert mae_det_score(plan, 3, weights=[1, 1]) == pytest.approx(math.log(16) + s0 + math.log(32) + s1)
    # repvgg counts as its fused k x k conv; depth repeats the block with the stage's width as input
    deep = {"stem": 4, "stages": [_stage("repvgg", 8, 2, 3), _stage("conv", 8, 1, 1)]}
    s0 = 0.5 * math.log(27) + 0.5 * math.log(4 * 9) + 0.5 * math.log(8 * 9)
    assert mae_det_score(deep, 3) == pytest.approx(
        math.log(8) + s0 + 6 * (math.log(8) + s0 + 0.5 * math.log(8))
    )
    with pytest.raises(ValueError, match="one value per stage"):
        mae_det_score(plan, 3, weights=[1.0])


def test_registered_proxy_reads_built_detectors_and_needs_no_forward_pass():
    space = DetectorSpace().bind((3, 32, 32), 3)
    arch = space.sample(np.random.default_rng(0))
    model = arch.build()
    want = mae_det_score(space.plan(arch.params), 3)
    assert PROXIES["mae_det"].data == "none" and not PROXIES["mae_det"].needs_targets
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    assert mae_det(model) == want
    assert compute_proxies(model, torch.zeros(1, 3, 32, 32), names=["mae_det"])["mae_det"] == want
    assert not calls
    # wider stages, same depth: more expressive
    wide = dict(arch.params) | {
        f"stage{s}.width": space.dimensions()[f"stage{s}.width"].values()[-1]
        for s in range(arch.params["scales"])
    }
    narrow = dict(arch.params) | {
        f"stage{s}.width": space.dimensions()[f"stage{s}.width"].values()[0]
        for s in range(arch.params["scales"])
    }
    assert mae_det(space.make(wide).build()) > mae_det(space.make(narrow).build())


def test_other_networks_are_read_as_one_chain():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 16, 1))
    expected = 0.5 * math.log(27) + 0.5 * math.log(9) + 0.5 * math.log(8) + math.log(16)
    assert mae_det(net) == pytest.approx(expected)
    assert mae_det(nn.Sequential(nn.ReLU())) == -math.inf


def test_zero_cost_warm_start_on_a_detection_task():
    task = load_detection("shapes-det", n_train=16, n_val=8, n_test=0, seed=0)
    space = DetectorSpace(block={"depth": [1]})
    scorer = ProxyScorer(["mae_det", "synflow"], threads=1)
    strategy = nf.strategy.ProxyWarmStart(scorer=scorer, n_candidates=6, n_warm=2, inner="random", seed=0)
    est = ZeroCostEstimator(task, proxies=["mae_det", "synflow", "params"], threads=1)
    exp = nf.Experiment("zc-det", space=space, objectives=["mae_det"], seed=0)
    exp.run(strategy, est, n_trials=3)
    assert scorer.computed == 6
    done = [t for t in exp.trials if t.state is nf.TrialState.COMPLETE]
    assert len(done) == 3 and all(math.isfinite(t.metrics["synflow"]) for t in done)
    assert est.batch(task.input_shape, task.num_classes)[0].shape == (16, 3, 64, 64)


@pytest.mark.skipif(not (BENCH / "nb201" / "nb201_cifar10.csv").is_file(), reason="no NB201 table")
def test_usable_by_rank():
    from nasforge.bench import rank_estimator

    res = rank_estimator(
        "nb201",
        "zero_cost",
        n=5,
        seed=0,
        root=BENCH,
        estimator_options={"proxies": ["mae_det"], "threads": 1},
    )
    spearman, kendall = res.correlations()["mae_det"]
    assert -1 <= spearman <= 1 and -1 <= kendall <= 1
