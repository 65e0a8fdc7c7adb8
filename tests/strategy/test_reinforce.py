from __future__ import annotations

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.experiment import Trial, TrialState
from nasforge.objective import Objective
from nasforge.strategy import RandomSearch, Reinforce
from nasforge.testing import additive_space, best_on_additive, run_additive, toy_space


def test_reinforce_beats_random_on_an_additive_space() -> None:
    rl = [best_on_additive(Reinforce(seed=s), s) for s in range(10)]
    rnd = [best_on_additive(RandomSearch(seed=s), s) for s in range(10)]
    assert np.mean(rl) > np.mean(rnd) + 2, (rl, rnd)


def test_policy_concentrates_on_the_best_value_of_each_dimension() -> None:
    for seed in range(3):
        rl = Reinforce(seed=seed)
        run_additive(rl, seed, 250)
        probs = np.array(list(rl.probabilities().values()))  # (8 dims, 5 values)
        assert probs.shape == (8, 5)
        assert np.allclose(probs.sum(axis=1), 1.0)
        assert (probs.argmax(axis=1) == 4).sum() >= 7, probs.round(2)
        assert probs[:, 4].mean() > 0.7, probs.round(2)


def _trial(arch, number: int, score: float | None, state: TrialState = TrialState.COMPLETE) -> Trial:
    if score is None:
        return Trial(number, arch, state, error="boom" if state is TrialState.FAIL else None)
    return Trial(number, arch, state, metrics={"score": score}, values=(score,))


def test_inactive_dimensions_and_failed_trials_leave_the_policy_alone() -> None:
    space = toy_space()  # "d" is active only when "c" is True
    rl = Reinforce(lr=0.5, seed=0)
    rl.setup(space, Objective(["score"]))
    before = rl.probabilities()
    rl.tell(_trial(space.make({"a": 4, "b": "z", "c": False}), 0, 6.0))
    rl.tell(_trial(space.make({"a": 0, "b": "x", "c": False}), 1, 0.0))
    after = rl.probabilities()
    assert after["d"] == before["d"]  # never active: no gradient
    assert after["a"] != before["a"]
    assert after["a"][4] > after["a"][0]  # the better value gained probability
    rl.tell(_trial(space.make({"a": 1, "b": "y", "c": True, "d": 1}), 2, None, TrialState.FAIL))
    rl.tell(_trial(space.make({"a": 2, "b": "y", "c": True, "d": 0}), 3, None, TrialState.PRUNED))
    assert rl.probabilities() == after


def test_samples_respect_conditional_dimensions() -> None:
    space = toy_space()
    rl = Reinforce(seed=1)
    rl.setup(space, Objective(["score"]))
    for _ in range(30):
        arch = rl.ask()
        assert arch is not None
        assert ("d" in arch.params) == arch.params["c"]


def test_state_dict_restores_the_policy() -> None:
    a = Reinforce(seed=4)
    run_additive(a, 4, 30)
    b = Reinforce(seed=123)
    b.setup(additive_space(), Objective(["score"]))
    b.load_state_dict(a.state_dict())
    assert b.probabilities() == a.probabilities()
    assert [b.ask().key for _ in range(5)] == [a.ask().key for _ in range(5)]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": 0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"max_resample": 0}, "max_resample"),
    ],
)
def test_bad_settings(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Reinforce(**kwargs)


def test_state_for_another_space_is_rejected() -> None:
    a = Reinforce(seed=0)
    a.setup(toy_space(), Objective(["score"]))
    b = Reinforce(seed=0)
    b.setup(additive_space(), Objective(["score"]))
    with pytest.raises(ConfigError, match="Reinforce"):
        b.load_state_dict(a.state_dict())
