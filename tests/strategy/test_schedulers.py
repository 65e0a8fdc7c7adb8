"""Early-stopping schedulers on scripted learning curves, alone and inside an Experiment."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from nasforge.errors import ConfigError, UnknownComponentError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment, TrialState
from nasforge.objective import Objective
from nasforge.space import Architecture, Choice, SearchSpace
from nasforge.strategy import (
    BOHB,
    GridSearch,
    Hyperband,
    HyperbandSearch,
    LearningCurveStopping,
    MedianStopping,
    SuccessiveHalving,
    SuccessiveHalvingSearch,
)


def _setup(scheduler: Any, direction: str = "acc") -> Any:
    scheduler.setup(Objective([direction]))
    return scheduler


# ---------------------------------------------------------------------------------------- unit level
def test_successive_halving_rungs_and_decisions() -> None:
    sh = _setup(SuccessiveHalving(min_resource=1, eta=2, max_resource=4))
    assert sh.milestones(0, 4) == [1, 2]
    assert sh.observe(0, 1, 0.5) is False  # alone at the rung: goes on
    assert sh.observe(1, 1, 0.4) is True  # 2 values, keep 1: 0.4 < 0.5
    assert sh.observe(2, 1, 0.6) is False  # the best so far
    assert sh.observe(3, 1, 0.55) is False  # 4 values, keep 2: 0.55 is second best
    assert sh.observe(4, 1, 0.45) is True
    # rung 2: trial 0 arrives first and goes on; trial 2 beats it
    assert sh.observe(0, 2, 0.7) is False
    assert sh.observe(2, 2, 0.8) is False
    assert sh.observe(3, 2, 0.6) is True
    # no decision at or beyond the full budget
    assert sh.observe(3, 4, 0.0) is False


def test_successive_halving_minimises_when_the_objective_does() -> None:
    sh = _setup(SuccessiveHalving(min_resource=1, eta=2, max_resource=4), "-loss")
    assert sh.observe(0, 1, 1.0) is False
    assert sh.observe(1, 1, 2.0) is True  # a larger loss is worse
    assert sh.observe(2, 1, 0.5) is False


def test_a_sparse_report_passes_every_rung_it_jumps() -> None:
    sh = _setup(SuccessiveHalving(min_resource=1, eta=2, max_resource=8))
    sh.observe(0, 1, 0.9)
    sh.observe(0, 2, 0.9)
    sh.observe(0, 4, 0.9)
    assert sh.observe(1, 5, 0.5) is True  # recorded at rungs 1, 2 and 4, and worse at each


def test_nan_counts_as_worst() -> None:
    sh = _setup(SuccessiveHalving(min_resource=1, eta=2, max_resource=4))
    sh.observe(0, 1, 0.1)
    assert sh.observe(1, 1, float("nan")) is True


def test_hyperband_brackets_follow_hyperbands_proportions() -> None:
    hb = _setup(Hyperband(min_resource=1, eta=3, max_resource=27, seed=0))
    assert hb.s_max == 3
    assert hb.bracket_weights() == [27, 18, 6, 4]
    assert [hb.bracket_resources(b) for b in range(4)] == [[1, 3, 9], [3, 9], [9], []]
    counts = Counter(hb.bracket_of(t) for t in range(5500))
    for b, w in enumerate(hb.bracket_weights()):
        assert counts[b] / 5500 == pytest.approx(w / 55, abs=0.03)
    again = _setup(Hyperband(min_resource=1, eta=3, max_resource=27, seed=0))
    assert [again.bracket_of(t) for t in range(200)] == [hb.bracket_of(t) for t in range(200)]
    other = _setup(Hyperband(min_resource=1, eta=3, max_resource=27, seed=1))
    assert [other.bracket_of(t) for t in range(200)] != [hb.bracket_of(t) for t in range(200)]


def test_hyperband_trials_compete_only_within_their_bracket() -> None:
    hb = _setup(Hyperband(min_resource=1, eta=3, max_resource=9, seed=0))
    zero = [t for t in range(200) if hb.bracket_of(t) == 0][:2]
    one = [t for t in range(200) if hb.bracket_of(t) == 1][:2]
    assert hb.observe(zero[0], 1, 0.9) is False
    assert hb.observe(zero[1], 1, 0.1) is True  # worse than its bracket's best
    assert hb.observe(one[0], 1, 0.05) is False  # bracket 1 has no rung at 1
    assert hb.observe(one[0], 3, 0.05) is False  # first at bracket 1's rung 3
    assert hb.milestones(zero[0], 9) == [1, 3] and hb.milestones(one[0], 9) == [3]


def test_hyperband_needs_the_full_budget() -> None:
    hb = _setup(Hyperband(min_resource=1, eta=3))
    with pytest.raises(ConfigError, match="max_resource"):
        hb.observe(0, 1, 0.5)
    hb.bind(9)
    assert hb.observe(0, 1, 0.5) is False


def test_median_stopping_waits_for_completed_trials() -> None:
    from nasforge.experiment import Trial

    median = _setup(MedianStopping(min_trials=3, warmup_steps=2))
    space = SearchSpace({"x": Choice([0, 1])})
    arch = space.make({"x": 0})
    for number, value in enumerate([0.5, 0.6, 0.7]):
        assert median.observe(number, 2, value) is False  # nothing completed yet
        median.finished(Trial(number, arch, TrialState.COMPLETE, intermediate={1: 0.0, 2: value}))
    assert median.observe(3, 1, 0.0) is False  # warm-up step
    assert median.observe(3, 2, 0.55) is True  # below the median 0.6
    assert median.observe(4, 2, 0.65) is False
    assert median.observe(5, 3, 0.0) is False  # nobody completed step 3
    median.finished(Trial(6, arch, TrialState.PRUNED, intermediate={2: 0.01}))  # pruned ones don't count
    assert median.observe(7, 2, 0.6) is False


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SuccessiveHalving(min_resource=0), "min_resource"),
        (lambda: SuccessiveHalving(eta=1), "eta"),
        (lambda: Hyperband(max_resource=True), "max_resource"),
        (lambda: MedianStopping(min_trials=0), "min_trials"),
        (lambda: MedianStopping(steps=[0, 2]), "steps"),
        (lambda: BOHB(random_fraction=2.0), "random_fraction"),
        (lambda: LearningCurveStopping(min_steps=2), "min_steps"),
        (lambda: LearningCurveStopping(margin=-1), "margin"),
    ],
)
def test_bad_options_are_config_errors(make: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()


# ---------------------------------------------------------------------------------------- in an Experiment
CURVES = {  # value after epochs 1, 2, 3, 4 of each architecture
    0: [0.50, 0.60, 0.70, 0.80],
    1: [0.40, 0.45, 0.50, 0.55],  # worse than arch 0 at every epoch
    2: [0.60, 0.70, 0.80, 0.90],  # the best
    3: [0.10, 0.20, 0.30, 0.95],  # a late bloomer: stopped early, the price of low fidelity
    4: [0.55, 0.65, 0.66, 0.67],
    5: [0.20, 0.20, 0.20, 0.20],
}


class Scripted(Estimator):
    """Reports a scripted learning curve per architecture; its cost is one second per epoch."""

    max_step = 4

    def __init__(self) -> None:
        self.epochs_run = 0

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        curve = CURVES[arch.params["x"]]
        for epoch, value in enumerate(curve, start=1):
            self.epochs_run += 1
            if epoch < len(curve):
                ctx.report(epoch, value, {"sim_seconds": float(epoch), "epochs": epoch})
        return {"acc": curve[-1], "sim_seconds": float(len(curve)), "epochs": len(curve)}


def _space() -> SearchSpace:
    return SearchSpace({"x": Choice(list(CURVES))})


def test_successive_halving_in_an_experiment_stops_the_right_trials() -> None:
    exp = Experiment("sh", space=_space(), objectives=["acc"], seed=0)
    est = Scripted()
    exp.run(GridSearch(), est, scheduler="successive_halving", scheduler_options={"eta": 2})
    states = {t.architecture.params["x"]: t.state for t in exp.trials}
    # rung at epoch 1: 0 alone goes on, 1 < 0 stops, 2 best goes on, 3 is worst of 4 ... (keep 2)
    assert states == {
        0: TrialState.COMPLETE,
        1: TrialState.PRUNED,
        2: TrialState.COMPLETE,
        3: TrialState.PRUNED,
        4: TrialState.PRUNED,  # rung 2: 0.65 is the 3rd of 3 (0.60, 0.70, 0.65): keep 1
        5: TrialState.PRUNED,
    }
    pruned = {t.architecture.params["x"]: t for t in exp.trials if t.state is TrialState.PRUNED}
    assert pruned[1].metrics == {"sim_seconds": 1.0, "epochs": 1, "step": 1}
    assert pruned[4].metrics["step"] == 2 and pruned[4].metrics["sim_seconds"] == 2.0
    assert dict(pruned[4].intermediate) == {1: 0.55, 2: 0.65}
    assert est.epochs_run == 4 + 1 + 4 + 1 + 2 + 1  # stopped trials cost only what they ran
    best = exp.best()
    assert best is not None and best.architecture.params["x"] == 2


def test_a_strategy_brings_its_scheduler_and_an_explicit_one_replaces_it() -> None:
    exp = Experiment("hb", space=_space(), objectives=["acc"], seed=0)
    exp.set_strategy("hyperband", eta=2)
    assert isinstance(exp.scheduler, Hyperband)
    exp.set_strategy("random")
    assert exp.scheduler is None  # the hyperband strategy's scheduler left with it
    exp.run(estimator=Scripted(), n_trials=3, scheduler="median")
    assert isinstance(exp.scheduler, MedianStopping)
    with pytest.raises(UnknownComponentError, match="Did you mean 'median'"):
        exp.set_scheduler("medain")
    with pytest.raises(ConfigError, match="scheduler options go with a scheduler name"):
        exp.set_scheduler(MedianStopping(), min_trials=2)


def test_hyperband_takes_the_full_budget_from_the_estimator() -> None:
    exp = Experiment("hb", space=_space(), objectives=["acc"], seed=1)
    exp.run("hyperband", Scripted(), n_trials=6, strategy_options={"eta": 2})
    assert exp.scheduler is not None and exp.scheduler.max_resource == 4
    assert len(exp.trials) == 6


class Toy(Estimator):
    """A 2-dimensional space with 4-step curves: value = (a + b) * step / 4 (ranks like the end)."""

    max_step = 4

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        score = float(arch.params["a"] + arch.params["b"])
        for step in range(1, 4):
            ctx.report(step, score * step / 4)
        return {"acc": score}


def _toy_space() -> SearchSpace:
    return SearchSpace({"a": Choice(list(range(8))), "b": Choice(list(range(8)))})


def _states(exp: Experiment) -> list[tuple[str, str]]:
    return [(t.architecture.key, t.state.value) for t in exp.trials]


@pytest.mark.parametrize("strategy", ["successive_halving", "hyperband", "bohb"])
def test_a_resumed_search_replays_the_rungs_and_decides_identically(tmp_path: Any, strategy: str) -> None:
    options: dict[str, Any] = {"eta": 2}
    if strategy == "bohb":
        options.update(n_initial=4, min_points=3, n_candidates=20, epochs=20)
    straight = Experiment("s", space=_toy_space(), objectives=["acc"], seed=7)
    straight.run(strategy, Toy(), n_trials=24, strategy_options=options)
    first = Experiment("s", space=_toy_space(), objectives=["acc"], seed=7, run_dir=tmp_path)
    first.run(strategy, Toy(), n_trials=11, strategy_options=options)
    resumed = Experiment.open(tmp_path, space=_toy_space())
    resumed.run(strategy, Toy(), n_trials=24, strategy_options=options)
    assert _states(resumed) == _states(straight)
    assert any(state == "PRUNED" for _, state in _states(straight))


def test_bohb_fits_on_the_largest_budget_with_enough_results() -> None:
    exp = Experiment("bohb", space=_toy_space(), objectives=["acc"], seed=3)
    bohb = BOHB(eta=2, n_initial=4, min_points=4, n_candidates=20, epochs=20, seed=3)
    exp.run(bohb, Toy(), n_trials=6)
    data = bohb._data(bohb._n_results())
    complete = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    by_step: Counter[int] = Counter(s for t in exp.trials for s in t.intermediate)
    if len(complete) >= 4:
        assert len(data) == len(complete)
    else:  # the largest step with >= 4 values, else the best-populated level
        enough = [s for s, n in by_step.items() if n >= 4]
        expected = by_step[max(enough)] if enough else max([len(complete), *by_step.values()])
        assert len(data) == expected
    exp.run(bohb, Toy(), n_trials=40)
    complete = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    assert len(bohb._data(bohb._n_results())) == len(complete) >= 4
    best = exp.best()
    assert best is not None and best.value is not None and best.value >= 12  # optimum 14 in 64 points


def test_multifidelity_strategies_expose_their_scheduler() -> None:
    assert isinstance(SuccessiveHalvingSearch(min_resource=2).scheduler, SuccessiveHalving)
    assert HyperbandSearch(max_resource=27).scheduler.bracket_weights() == [27, 18, 6, 4]
    assert isinstance(BOHB().scheduler, Hyperband)


# ---------------------------------------------------------------------------------------- learning curves
def _pow3_curve(c: float, a: float, alpha: float, steps: int) -> list[float]:
    return [c - a * t**-alpha for t in range(1, steps + 1)]


def test_learning_curve_fit_extrapolates_a_power_law() -> None:
    lc = LearningCurveStopping()
    truth = _pow3_curve(0.9, 0.4, 0.7, 50)
    pred = lc.extrapolate(list(range(1, 6)), truth[:5], 50)
    assert pred == pytest.approx(truth[-1], abs=1e-6)
    assert lc.extrapolate([1, 2], [0.1, 0.2], 50) is None  # too few points
    assert lc.extrapolate([1, 2, 3], [0.1, float("nan"), 0.2], 50) is None


def test_learning_curve_stops_saturated_losers_and_keeps_climbers() -> None:
    from nasforge.experiment import Trial

    lc = _setup(LearningCurveStopping(min_steps=3, min_trials=1, max_resource=20, margin=0.01))
    space = SearchSpace({"x": Choice([0])})
    arch = space.make({"x": 0})
    best = _pow3_curve(0.9, 0.4, 0.7, 20)
    for step, v in enumerate(best[:-1], start=1):
        assert lc.observe(0, step, v) is False  # nobody completed yet
    lc.finished(Trial(0, arch, TrialState.COMPLETE, values=(best[-1],)))
    flat = _pow3_curve(0.6, 0.2, 1.5, 20)  # saturates near 0.6, far below 0.9
    decisions = [lc.observe(1, s, v) for s, v in enumerate(flat[:-1], start=1)]
    assert decisions[:2] == [False, False] and decisions[2] is True  # stopped at the 3rd value
    climber = _pow3_curve(1.0, 0.7, 0.8, 20)  # starts lower than the flat one, ends higher than best
    assert not any(lc.observe(2, s, v) for s, v in enumerate(climber[:-1], start=1))


def test_learning_curve_minimises_losses() -> None:
    from nasforge.experiment import Trial

    lc = _setup(LearningCurveStopping(min_steps=3, min_trials=1, max_resource=20), "-loss")
    arch = SearchSpace({"x": Choice([0])}).make({"x": 0})
    lc.finished(Trial(0, arch, TrialState.COMPLETE, values=(0.1,)))
    bad = [1.0 + 0.5 * t**-1.0 for t in range(1, 5)]  # a loss levelling off at 1.0 > 0.1
    assert [lc.observe(1, s, v) for s, v in enumerate(bad, start=1)] == [False, False, True, True]


def test_learning_curve_in_an_experiment() -> None:
    exp = Experiment("lc", space=_space(), objectives=["acc"], seed=0)
    exp.run(GridSearch(), Scripted(), scheduler="learning_curve", scheduler_options={"min_trials": 1})
    states = {t.architecture.params["x"]: t.state for t in exp.trials}
    assert states[0] is TrialState.COMPLETE and states[2] is TrialState.COMPLETE
    assert states[5] is TrialState.PRUNED  # flat at 0.2, stopped after its 3rd epoch
    assert exp.trials[5].metrics["step"] == 3
