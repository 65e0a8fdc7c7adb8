"""Every registered strategy passes the shared conformance suite."""

from __future__ import annotations

import pytest

from nasforge.registry import STRATEGIES
from nasforge.testing import StrategyConformance


@pytest.fixture(params=STRATEGIES.names())
def make_strategy(request: pytest.FixtureRequest):
    name = request.param
    options = {"population": 6, "tournament": 3} if name == "evolution" else {}
    return lambda seed: STRATEGIES.create(name, seed=seed, **options)


class TestRegisteredStrategies(StrategyConformance):
    pass
