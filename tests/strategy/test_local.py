from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.experiment import Trial, TrialState
from nasforge.objective import Objective
from nasforge.space import Choice, SearchSpace
from nasforge.strategy import LocalSearch, RandomSearch
from nasforge.strategy._util import sample_unseen
from nasforge.testing import StrategyConformance, additive_space, best_on_additive, toy_space


def test_local_search_beats_random_on_an_additive_space() -> None:
    # 5**8 points, optimum 32: hill climbing on an additive landscape walks straight up.
    ls = [best_on_additive(LocalSearch(seed=s), s) for s in range(8)]
    rnd = [best_on_additive(RandomSearch(seed=s), s) for s in range(8)]
    assert np.mean(ls) > np.mean(rnd) + 3, (ls, rnd)
    assert max(ls) == 32


def test_full_neighbourhood_variant_also_climbs() -> None:
    ls = [best_on_additive(LocalSearch(first_improvement=False, seed=s), s, n=150) for s in range(4)]
    rnd = [best_on_additive(RandomSearch(seed=s), s, n=150) for s in range(4)]
    assert np.mean(ls) > np.mean(rnd) + 2, (ls, rnd)


def _finish(arch, number: int, score: float) -> Trial:
    return Trial(number, arch, TrialState.COMPLETE, metrics={"score": score}, values=(score,))


def test_asynchronous_asks_never_repeat_a_proposal() -> None:
    space = additive_space(dims=3, values=3)  # 27 points
    ls = LocalSearch(n_initial=3, seed=0)
    ls.setup(space, Objective(["score"]))
    proposed = [ls.ask() for _ in range(12)]  # nothing told yet
    keys = [a.key for a in proposed if a is not None]
    assert len(keys) == 12 and len(set(keys)) == 12
    for i, arch in enumerate(proposed):
        assert arch is not None
        ls.tell(_finish(arch, i, float(sum(arch.params.values()))))
    more = [ls.ask() for _ in range(15)]
    keys += [a.key for a in more if a is not None]
    assert len(keys) == 27 and len(set(keys)) == 27  # the whole space, once each
    assert ls.ask() is None  # exhausted


def test_moves_to_an_improving_neighbour_and_queues_its_neighbours() -> None:
    space = additive_space(dims=2, values=5)
    ls = LocalSearch(n_initial=1, seed=1)
    ls.setup(space, Objective(["score"]))
    start = ls.ask()
    assert start is not None
    ls.tell(_finish(start, 0, float(sum(start.params.values()))))
    for number in range(1, 10):
        arch = ls.ask()
        assert arch is not None
        # every proposal after the first is a neighbour of the current point (one step away)
        assert ls._current is not None
        assert sum(arch.params[k] != ls._current.params[k] for k in arch.params) == 1
        ls.tell(_finish(arch, number, float(sum(arch.params.values()))))
    assert ls._current is not None
    assert sum(ls._current.params.values()) > sum(start.params.values())


def test_sample_unseen_walks_the_grid_when_sampling_keeps_hitting_seen_points() -> None:
    space = SearchSpace({"a": Choice(list(range(40)))})
    everything = [a.key for a in space.grid()]
    rng = np.random.default_rng(0)
    last = sample_unseen(space, rng, set(everything[:-1]), tries=1)
    assert last is not None and last.key == everything[-1]
    assert sample_unseen(space, rng, set(everything)) is None


def test_state_dict_round_trip_mid_climb() -> None:
    def drive(ls: LocalSearch, start: int, stop: int, archs: list) -> None:
        for n in range(start, stop):
            arch = ls.ask()
            assert arch is not None
            archs.append(arch.key)
            p = arch.params
            ls.tell(_finish(arch, n, p["a"] + 2.0 * (p["b"] == "z") + p["c"] + p.get("d", 0)))

    a = LocalSearch(n_initial=3, seed=7)
    a.setup(toy_space(), Objective(["score"]))
    straight: list[str] = []
    drive(a, 0, 20, straight)
    b = LocalSearch(n_initial=3, seed=7)
    b.setup(toy_space(), Objective(["score"]))
    resumed: list[str] = []
    drive(b, 0, 8, resumed)
    c = LocalSearch(n_initial=3, seed=99)
    c.setup(toy_space(), Objective(["score"]))
    c.load_state_dict(b.state_dict())
    drive(c, 8, 20, resumed)
    assert resumed == straight


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_initial": 0}, "n_initial"),
        ({"n_initial": 2.5}, "n_initial"),
        ({"first_improvement": 1}, "first"),
        ({"order": "best"}, "order"),
        ({"n_restart_candidates": 0}, "n_restart_candidates"),
    ],
)
def test_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LocalSearch(**kwargs)


def test_bad_state_is_a_config_error() -> None:
    ls = LocalSearch(seed=0)
    ls.setup(toy_space(), Objective(["score"]))
    state = ls.state_dict()
    del state["queue"]
    with pytest.raises(ConfigError, match="LocalSearch"):
        ls.load_state_dict(state)


# ---------------------------------------------------------------------- order="predicted"
class TestPredictedOrderConformance(StrategyConformance):
    @pytest.fixture
    def make_strategy(self):
        # few initial samples, so the 7-trial resume test stops while the predictor is in use
        return lambda seed: LocalSearch(order="predicted", n_initial=3, seed=seed)


def test_predicted_order_climbs_faster_than_random_order() -> None:
    guided = [best_on_additive(LocalSearch(order="predicted", seed=s), s, n=40) for s in range(6)]
    plain = [best_on_additive(LocalSearch(seed=s), s, n=40) for s in range(6)]
    assert np.mean(guided) > np.mean(plain) + 0.5, (guided, plain)  # measured: 31.7 vs 30.5


def test_predicted_order_queues_the_best_predicted_neighbour_first() -> None:
    space = additive_space()
    ls = LocalSearch(order="predicted", n_initial=20, seed=3)
    ls.setup(space, Objective(["score"]))
    for number in range(25):
        arch = ls.ask()
        assert arch is not None
        ls.tell(_finish(arch, number, float(sum(arch.params.values()))))
    ls.ask()  # re-ranks the remaining neighbours with the refitted predictor
    assert len(ls._queue) >= 2
    predicted = ls._predict(ls._queue)
    assert np.all(np.diff(predicted) <= 0), predicted


def test_predicted_order_resumes_identically_with_pending_asks() -> None:
    # asynchronous: three proposals are always in flight, and the state is saved mid-climb
    def drive(ls: LocalSearch, start: int, stop: int, log: list[str], pending: list) -> None:
        for n in range(start, stop):
            while len(pending) < 3:
                arch = ls.ask()
                assert arch is not None
                pending.append(arch)
                log.append(arch.key)
            arch = pending.pop(0)
            ls.tell(_finish(arch, n, float(sum(arch.params.values()))))

    def make(seed: int) -> LocalSearch:
        ls = LocalSearch(order="predicted", n_initial=4, seed=seed)
        ls.setup(additive_space(), Objective(["score"]))
        return ls

    straight: list[str] = []
    drive(make(11), 0, 30, straight, [])
    first, pending = make(11), []
    resumed: list[str] = []
    drive(first, 0, 14, resumed, pending)
    state = json.loads(json.dumps(first.state_dict()))
    second = make(99)
    second.load_state_dict(state)
    drive(second, 14, 30, resumed, pending)
    assert resumed == straight


def test_predicted_order_needs_two_finite_results() -> None:
    # all failures: nothing to fit, so the search goes on with random proposals
    ls = LocalSearch(order="predicted", n_initial=2, seed=0)
    ls.setup(additive_space(dims=3), Objective(["score"]))
    for number in range(6):
        arch = ls.ask()
        assert arch is not None
        ls.tell(Trial(number, arch, TrialState.FAIL, error="boom"))
    assert ls._model is None


def test_a_state_saved_before_the_predictor_options_still_loads() -> None:
    ls = LocalSearch(n_initial=3, seed=0)
    ls.setup(toy_space(), Objective(["score"]))
    for number in range(5):
        arch = ls.ask()
        assert arch is not None
        ls.tell(_finish(arch, number, float(arch.params["a"])))
    state = ls.state_dict()
    for key in ("train", "version", "ranked_at", "model_version", "model_seed"):
        del state[key]
    again = LocalSearch(n_initial=3, seed=0)
    again.setup(toy_space(), Objective(["score"]))
    again.load_state_dict(state)
    assert again.ask() is not None


def test_guided_local_search_with_a_tree_predictor_beats_random() -> None:
    from nasforge.strategy import GuidedLocalSearch

    make = lambda s: GuidedLocalSearch(predictor="rf", predictor_options={"n_estimators": 20}, seed=s)  # noqa: E731
    gls = [best_on_additive(make(s), s, 60) for s in range(3)]
    rnd = [best_on_additive(RandomSearch(seed=s), s, 60) for s in range(3)]
    assert np.mean(gls) > np.mean(rnd) + 2, (gls, rnd)
