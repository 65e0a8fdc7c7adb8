"""Every registered space passes the SearchSpace conformance suite (bound to a small RGB task)."""

from __future__ import annotations

import pytest

from nasforge.registry import SPACES
from nasforge.testing import SpaceConformance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestRegisteredSpaces(SpaceConformance):
    n_samples = 4

    @pytest.fixture(params=SPACES.names())
    def space(self, request):
        return SPACES.create(request.param).bind((3, 16, 16), 3)
