"""Every registered strategy passes the shared conformance suite."""

from __future__ import annotations

import pytest

from nasforge.registry import STRATEGIES
from nasforge.testing import NumericSumRanker, StrategyConformance

# registered strategies with non-default options that change how they work inside
VARIANTS = [
    ("bananas", {"predictor": "rf", "predictor_options": {"n_estimators": 20}}),
    ("guided_local", {"predictor": "gbm", "predictor_options": {"n_estimators": 20}}),
    ("bohb", {"predictor": "gp"}),
]


# differentiable strategies train a supernet of the NB201 space, which the toy space does not have:
# tests/strategy/test_differentiable.py covers the same behaviour for them on that space
NEEDS_SUPERNET = {"darts", "gdas", "spos"}


@pytest.fixture(
    params=[(n, {}) for n in STRATEGIES.names() if n not in NEEDS_SUPERNET] + VARIANTS,
    ids=lambda p: p[0] + "".join(f"-{k}={v}" for k, v in p[1].items() if k == "predictor"),
)
def make_strategy(request: pytest.FixtureRequest):
    name, variant = request.param
    options: dict = {"population": 6, "tournament": 3} if name == "evolution" else dict(variant)

    def make(seed: int):
        if name == "zc_warm_start":  # the toy space builds no network: a stand-in proxy
            options.update(scorer=NumericSumRanker(), n_candidates=20, n_warm=5)
        return STRATEGIES.create(name, seed=seed, **options)

    return make


class TestRegisteredStrategies(StrategyConformance):
    pass
