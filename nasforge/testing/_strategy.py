"""Conformance tests every registered strategy must pass.

Use it by subclassing :class:`StrategyConformance` in a test module and providing a ``make_strategy``
fixture that returns ``factory(seed) -> Strategy``::

    class TestMine(StrategyConformance):
        @pytest.fixture
        def make_strategy(self):
            return lambda seed: MyStrategy(seed=seed)
"""

from __future__ import annotations

from collections.abc import Callable

from nasforge.experiment import Experiment, TrialState
from nasforge.strategy import Strategy
from nasforge.testing._toy import ToyEstimator, toy_space

__all__ = ["StrategyConformance"]

Factory = Callable[[int], Strategy]


def _run(make: Factory, seed: int, n: int, estimator: ToyEstimator | None = None) -> Experiment:
    exp = Experiment("conformance", space=toy_space(), objectives=["score"], seed=seed)
    exp.run(make(seed), estimator or ToyEstimator(), n_trials=n)
    return exp


class StrategyConformance:
    """Behaviour every strategy shares: optimum found, reproducible, no duplicates, resumable."""

    def test_finds_optimum_of_toy_space(self, make_strategy: Factory) -> None:
        exp = _run(make_strategy, seed=0, n=len(list(toy_space().grid())))
        best = exp.best()
        assert best is not None and best.value == 8.0

    def test_seeded_runs_are_reproducible(self, make_strategy: Factory) -> None:
        a = [t.architecture.key for t in _run(make_strategy, seed=3, n=12).trials]
        b = [t.architecture.key for t in _run(make_strategy, seed=3, n=12).trials]
        assert a == b

    def test_no_duplicate_evaluations_with_dedup(self, make_strategy: Factory) -> None:
        exp = _run(make_strategy, seed=1, n=20)
        keys = [t.architecture.key for t in exp.trials]
        assert len(keys) == len(set(keys))

    def test_asks_while_trials_run(self, make_strategy: Factory) -> None:
        """Three trials at a time in child processes: asked with others pending, never a duplicate."""
        exp = Experiment("conformance", space=toy_space(), objectives=["score"], seed=4)
        exp.run(
            make_strategy(4),
            ToyEstimator(),
            n_trials=15,
            executor="process",
            executor_options={"concurrency": 3},
        )
        assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 15
        keys = [t.architecture.key for t in exp.trials]
        assert len(keys) == len(set(keys))

    def test_state_dict_resume_continues_identically(self, make_strategy: Factory) -> None:
        straight = _run(make_strategy, seed=5, n=16)
        space = toy_space()
        first = Experiment("conformance", space=space, objectives=["score"], seed=5)
        first.run(make_strategy(5), ToyEstimator(), n_trials=7)
        # A new experiment object on the same storage and a fresh strategy: the saved state is restored.
        resumed = Experiment("conformance", space=space, objectives=["score"], storage=first.storage)
        resumed.run(make_strategy(5), ToyEstimator(), n_trials=16)
        assert [t.architecture.key for t in resumed.trials] == [t.architecture.key for t in straight.trials]

    def test_failed_trials_are_recorded_and_search_goes_on(self, make_strategy: Factory) -> None:
        exp = _run(make_strategy, seed=2, n=15, estimator=ToyEstimator(fail_when=0))
        states = {t.state for t in exp.trials}
        assert len(exp.trials) == 15  # failures did not stop the search
        assert TrialState.COMPLETE in states
        failed = [t for t in exp.trials if t.state is TrialState.FAIL]
        assert all(t.architecture.params["a"] == 0 and "planted failure" in (t.error or "") for t in failed)

    def test_pruned_trials_are_told_and_search_goes_on(self, make_strategy: Factory) -> None:
        exp = Experiment("conformance", space=toy_space(), objectives=["score"], seed=6)
        exp.run(make_strategy(6), ToyEstimator(report_steps=4), n_trials=20, scheduler="successive_halving")
        states = [t.state for t in exp.trials]
        assert len(states) == 20 and TrialState.PRUNED in states and TrialState.COMPLETE in states
        keys = [t.architecture.key for t in exp.trials]
        assert len(keys) == len(set(keys))
        pruned = [t for t in exp.trials if t.state is TrialState.PRUNED]
        assert all(t.metrics["step"] < 4 and t.values is None for t in pruned)

    def test_state_dict_is_json(self, make_strategy: Factory) -> None:
        import json

        exp = _run(make_strategy, seed=4, n=6)
        assert exp.strategy is not None
        state = exp.strategy.state_dict()
        assert json.loads(json.dumps(state)) == state
