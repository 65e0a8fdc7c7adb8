"""Zero-cost warm start: the proxy scorer (cache, representatives, data) and the strategy itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.estimate import ProxyScorer
from nasforge.strategy import ProxyWarmStart
from nasforge.testing import NumericSumRanker, best_on_additive, run_additive


@pytest.fixture
def space():
    return nf.spaces.NB201Space(C=4, N=1).bind((3, 8, 8), 10)


def _archs(space, n, seed=0):
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    while len(out) < n:
        a = space.sample(rng)
        out.setdefault(a.key, a)
    return list(out.values())


# ---------------------------------------------------------------------------------------- scorer
def test_scores_are_computed_once_and_the_cache_file_gives_the_same_values(space, tmp_path):
    cache = tmp_path / "proxies.jsonl"
    archs = _archs(space, 6)
    first = ProxyScorer(["synflow", "params"], cache=cache, threads=1)
    scores = first.scores(archs)
    assert first.computed == 6 and first.seconds > 0
    first.scores(archs)  # in memory now
    assert first.computed == 6
    assert len(cache.read_text().splitlines()) == 6

    second = ProxyScorer(["synflow", "params"], cache=cache, threads=1)
    assert second.scores(archs) == scores
    assert second.computed == 0

    fresh = ProxyScorer(["synflow", "params"], threads=1)  # no cache: computed again, identically
    assert fresh.scores(archs) == scores


def test_a_cache_of_other_settings_is_not_used(space, tmp_path):
    cache = tmp_path / "proxies.jsonl"
    archs = _archs(space, 3)
    ProxyScorer(["synflow"], cache=cache, threads=1).scores(archs)
    other = ProxyScorer(["synflow"], cache=cache, weight_seed=1, threads=1)
    other.scores(archs)
    assert other.computed == 3  # another weight seed is another fingerprint
    wider = nf.spaces.NB201Space(C=8, N=1).bind((3, 8, 8), 10)
    again = ProxyScorer(["synflow"], cache=cache, threads=1)
    again.scores([wider.make(a.params) for a in archs])
    assert again.computed == 3  # another space configuration too


def test_isomorphic_cells_get_the_score_of_their_representative(space):
    a, b = space.from_ops([4, 1, 0, 1, 0, 0]), space.from_ops([3, 1, 0, 1, 0, 0])
    assert a.key == b.key and a.params != b.params
    one, two = ProxyScorer(["synflow"], threads=1), ProxyScorer(["synflow"], threads=1)
    assert one.scores([a]) == two.scores([b])
    assert one.scores([space.representative(a)]) == one.scores([a])


def test_a_cut_last_line_is_recomputed_and_a_corrupt_line_is_a_clear_error(space, tmp_path):
    cache = tmp_path / "proxies.jsonl"
    archs = _archs(space, 3)
    ProxyScorer(["synflow"], cache=cache, threads=1).scores(archs)
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])  # killed while writing
    scorer = ProxyScorer(["synflow"], cache=cache, threads=1)
    scorer.scores(archs)
    assert scorer.computed == 1

    cache.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n")
    with pytest.raises(ConfigError, match=r"proxy cache .* line 2 .*delete the file"):
        ProxyScorer(["synflow"], cache=cache, threads=1).scores(archs)
    cache.write_text(json.dumps({"format": "something-else"}) + "\n" + lines[1] + "\n")
    with pytest.raises(ConfigError, match="line 1"):
        ProxyScorer(["synflow"], cache=cache, threads=1).scores(archs)
    with pytest.raises(ConfigError, match="is a directory"):
        ProxyScorer(["synflow"], cache=tmp_path)
    with pytest.raises(nf.errors.UnknownComponentError, match="synflow"):
        ProxyScorer(["synflo"])


def test_rank_votes_over_the_proxies(space):
    archs = [space.from_ops([3] * 6), space.from_ops([1] * 6), space.from_ops([2] * 6)]
    scorer = ProxyScorer(["synflow", "params", "flops"], threads=1)
    ranks = scorer.rank(archs)
    assert ranks.tolist() == [3.0, 1.0, 2.0]  # 3x3 convs > 1x1 convs > skips, by every proxy
    assert scorer.rank([]).shape == (0,)


def test_named_ensembles_and_the_log_rank_aggregation_are_reachable_by_name(space):
    from nasforge.estimate import ENSEMBLES, log_rank_vote
    from nasforge.registry import STRATEGIES

    archs = _archs(space, 5)
    az = ProxyScorer(["az_nas"], batch_size=8, threads=1)
    assert az.proxies == ENSEMBLES["az_nas"][0] and az.aggregation == "log_rank"
    assert az.rank(archs).tolist() == log_rank_vote(az.scores(archs), az.proxies).tolist()
    mixed = ProxyScorer(["meco", "zico", "swap_reg"], aggregation="log_rank", batch_size=8, threads=1)
    assert mixed.rank(archs).tolist() == log_rank_vote(mixed.scores(archs)).tolist()
    # as a YAML config names them: strategy: {name: zc_warm_start, proxies: [az_nas]}
    strategy = STRATEGIES.create("zc_warm_start", proxies=["az_nas"], n_candidates=6, n_warm=2, seed=0)
    assert strategy.scorer.proxies == ENSEMBLES["az_nas"][0] and strategy.scorer.aggregation == "log_rank"
    spec = ProxyWarmStart(proxies=["log_rank:synflow+meco"], n_candidates=6, n_warm=2, seed=0)
    assert spec.scorer.proxies == ("synflow", "meco") and spec.scorer.aggregation == "log_rank"
    exp = nf.Experiment("ws-az", space=space, objectives=["params"], seed=0)
    exp.run(strategy, nf.estimate.ZeroCostEstimator(proxies=["params"], threads=1), n_trials=3)
    assert strategy.scorer.computed == 6 and len(exp.trials) == 3
    with pytest.raises(ConfigError, match="unknown aggregation 'mean'"):
        ProxyScorer(["synflow"], aggregation="mean")
    with pytest.raises(ConfigError, match="aggregate differently"):
        ProxyScorer(["az_nas", "zc_vote"])
    with pytest.raises(ConfigError, match="Did you mean 'az_nas'"):
        ProxyScorer(["log_rank:synflow", "az_naz"])


def test_data_dependent_proxies_see_the_task(space):
    task = nf.datasets.load("digits")
    shape_space = nf.spaces.NB201Space(C=4, N=1).bind(task.input_shape, task.num_classes)
    archs = _archs(shape_space, 3)
    random_inputs = ProxyScorer(["naswot"], batch_size=16, threads=1)
    on_task = ProxyScorer(["naswot"], batch_size=16, threads=1)
    on_task.set_task(task)
    assert random_inputs.scores(archs) != on_task.scores(archs)
    data_free = ProxyScorer(["synflow"], threads=1)
    data_free_task = ProxyScorer(["synflow"], task=task, threads=1)
    assert data_free.scores(archs) == data_free_task.scores(archs)


# ---------------------------------------------------------------------------------------- strategy
def test_the_warm_start_proposes_the_best_screened_candidates_first(space):
    scorer = ProxyScorer(["synflow", "flops"], threads=1)
    strategy = ProxyWarmStart(scorer=scorer, n_candidates=40, n_warm=5, inner="random", seed=3)
    exp = nf.Experiment("ws", space=space, objectives=["params"], seed=0)
    exp.run(strategy, nf.estimate.ZeroCostEstimator(proxies=["params"], threads=1), n_trials=8)
    assert scorer.computed == 40
    first = [t.architecture for t in exp.trials[:5]]
    # the five proposed first are the five best of the 40 screened, best first
    screened_ranks = scorer.rank(first)
    assert screened_ranks.tolist() == sorted(screened_ranks.tolist(), reverse=True)
    assert len({t.architecture.key for t in exp.trials}) == 8  # then the inner strategy, no repeats


def test_warm_proposals_ruled_out_by_a_constraint_are_replaced_by_the_next_best(space):
    from nasforge.hardware import count_params

    # the proxy ranks the largest networks first; the constraint rules most of them out before
    # evaluation, so the warm start goes down its ranking until n_warm feasible ones are evaluated
    scorer = ProxyScorer(["params"], threads=1)
    sizes = sorted(count_params(a.build()) for a in _archs(space, 40, seed=5))
    limit = sizes[len(sizes) // 2]
    strategy = ProxyWarmStart(scorer=scorer, n_candidates=40, n_warm=3, inner="random", seed=3)
    exp = nf.Experiment("ws", space=space, objectives=["params"], constraints=[f"params <= {limit}"], seed=0)
    exp.run(strategy, nf.estimate.ZeroCostEstimator(proxies=["params"], threads=1), n_trials=3)
    screened = [t for t in exp.trials if t.screened]
    evaluated = [t for t in exp.trials if not t.screened]
    assert screened and len(evaluated) == 3 and all(t.feasible for t in evaluated)
    ranks = scorer.rank([t.architecture for t in exp.trials]).tolist()
    assert ranks == sorted(ranks, reverse=True)  # every proposal came from the ranking, in order
    assert strategy.state_dict()["warm_left"] == 0


def test_the_warm_start_makes_the_inner_strategy_start_higher():
    # on the additive space a proxy that agrees with the objective puts the best of 200 random
    # points first: after 5 queries the warm-started search is far ahead of plain random search
    warm = [
        best_on_additive(
            ProxyWarmStart(scorer=NumericSumRanker(), inner="random", n_candidates=200, n_warm=5), s, n=5
        )
        for s in range(5)
    ]
    cold = [best_on_additive("random", s, n=5) for s in range(5)]
    assert min(warm) > max(cold)


def test_the_inner_strategy_continues_from_the_warm_results():
    ranker = NumericSumRanker()
    exp = run_additive(ProxyWarmStart(scorer=ranker, inner="local", n_candidates=50, n_warm=3, seed=1), 0, 20)
    assert ranker.scored == 50  # screened once, at the first ask
    best_warm = max(t.value for t in exp.trials[:3])
    assert exp.best().value > best_warm  # local search climbed from there


def test_bad_options_are_clear_errors():
    with pytest.raises(ConfigError, match="n_warm"):
        ProxyWarmStart(n_candidates=5, n_warm=10)
    with pytest.raises(nf.errors.UnknownComponentError, match="strategy"):
        ProxyWarmStart(inner="no_such_strategy")
    with pytest.raises(ConfigError, match="another zero-cost warm start"):
        ProxyWarmStart(inner="zc_warm")
    with pytest.raises(ConfigError, match="rank"):
        ProxyWarmStart(scorer=object())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- warm_from
def _previous_run(tmp_path, n=30):
    from nasforge.testing import AdditiveEstimator, additive_space

    run = tmp_path / "previous"
    exp = nf.Experiment("prev", space=additive_space(), objectives=["score"], run_dir=run, seed=0)
    exp.run("random", AdditiveEstimator(), n_trials=n)
    return run, exp


def test_warm_from_a_previous_run_starts_from_its_best_and_its_predictions(tmp_path):
    from nasforge.testing import AdditiveEstimator, additive_space

    run, prev = _previous_run(tmp_path)
    prev_best = prev.best().value
    strategy = ProxyWarmStart(
        warm_from=run, predictor="rf", inner="random", n_candidates=300, n_warm=5, seed=0
    )
    exp = nf.Experiment("new", space=additive_space(), objectives=["score"], seed=1)
    exp.run(strategy, AdditiveEstimator(), n_trials=5)
    warm = [t.value for t in exp.trials]
    cold = [t.value for t in run_additive("random", 1, 5).trials]
    assert np.mean(warm) > np.mean(cold) + 3, (warm, cold)
    assert max(warm) >= prev_best - 2  # its best (or something predicted as good) comes back early


def test_warm_from_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not a nasforge run directory"):
        ProxyWarmStart(warm_from=tmp_path)
    run, _ = _previous_run(tmp_path, n=1)
    strategy = ProxyWarmStart(warm_from=run, inner="random", n_candidates=10, n_warm=2)
    exp = nf.Experiment("new", space=nf.testing.additive_space(), objectives=["score"])
    with pytest.raises(ConfigError, match=r"has 1 completed trials .* at least 2"):
        exp.run(strategy, nf.testing.AdditiveEstimator(), n_trials=2)
    with pytest.raises(ConfigError, match="either scorer= or warm_from="):
        ProxyWarmStart(warm_from=run, scorer=NumericSumRanker())
    with pytest.raises(ConfigError, match="unknown predictor"):
        ProxyWarmStart(warm_from=run, predictor="xgboost")
