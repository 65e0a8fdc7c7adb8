"""Conformance tests every estimator must pass (the contract of :class:`~nasforge.estimate.Estimator`).

Use it by subclassing :class:`EstimatorConformance` in a test module and providing a
``make_case`` fixture that returns ``factory() -> (estimator, space)``: a new estimator and a
search space whose architectures it can evaluate (bound to the estimator's task, if it has one),
as small as the estimator allows::

    class TestMine(EstimatorConformance):
        @pytest.fixture
        def make_case(self):
            return lambda: (MyEstimator(task, epochs=1), my_space.bind(task.input_shape, task.num_classes))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nasforge.estimate import Estimator, TrialContext
from nasforge.space import Architecture, SearchSpace

__all__ = ["EstimatorConformance"]

Case = Callable[[], tuple[Estimator, SearchSpace]]

#: metrics that measure this machine (wall time, throughput, latency): free to differ run to run
_TIMED_SUFFIXES = ("seconds", "_s", "_ms", "per_second")
_TIMED_PARTS = ("latency", "speedup", "time")


def _timed(name: str) -> bool:
    return name.endswith(_TIMED_SUFFIXES) or any(part in name for part in _TIMED_PARTS)


def _stable(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not _timed(k)}


def _arch(space: SearchSpace, seed: int = 0) -> Architecture:
    return space.sample(np.random.default_rng(seed))


class EstimatorConformance:
    """What every estimator does: metrics a search can rank by, the same metrics for the same
    architecture and seed, the architecture left as it was, steps reported within ``max_step``,
    and ``cheap_metrics`` answering without evaluating."""

    def test_returns_metrics_a_search_can_use(self, make_case: Case) -> None:
        estimator, space = make_case()
        metrics = estimator.evaluate(_arch(space), TrialContext(0, 0))
        assert isinstance(metrics, Mapping) and metrics
        assert all(isinstance(k, str) for k in metrics)
        numbers = [v for v in metrics.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert numbers and any(math.isfinite(v) for v in numbers)

    def test_same_architecture_and_seed_give_the_same_metrics(self, make_case: Case) -> None:
        estimator, space = make_case()
        arch = _arch(space, 1)
        first = estimator.evaluate(arch, TrialContext(0, 7))
        again, _ = make_case()
        second = again.evaluate(arch, TrialContext(3, 7))  # another trial number, the same seed
        assert _stable(first) == _stable(second)

    def test_leaves_the_architecture_as_it_was(self, make_case: Case) -> None:
        estimator, space = make_case()
        arch = _arch(space, 2)
        before = (arch.key, copy.deepcopy(dict(arch.params)))
        estimator.evaluate(arch, TrialContext(0, 0))
        assert (arch.key, dict(arch.params)) == before

    def test_reports_steps_within_its_budget(self, make_case: Case) -> None:
        estimator, space = make_case()
        seen: list[tuple[int, float]] = []
        ctx = TrialContext(0, 0, reporter=lambda step, value: seen.append((step, value)))
        estimator.evaluate(_arch(space, 3), ctx)
        steps = [s for s, _ in seen]
        assert steps == sorted(set(steps))  # each step once, in order
        if estimator.max_step is not None:
            assert all(1 <= s <= estimator.max_step for s in steps)
        assert all(math.isfinite(v) for _, v in seen)

    def test_cheap_metrics_answer_without_evaluating(self, make_case: Case) -> None:
        estimator, space = make_case()
        cheap = estimator.cheap_metrics(_arch(space, 4), frozenset({"params", "flops", "latency_ms"}))
        assert isinstance(cheap, Mapping)
        assert all(isinstance(v, (int, float)) for v in cheap.values())
