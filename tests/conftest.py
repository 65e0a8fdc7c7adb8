"""Shared test fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Every test sees the same 80-column terminal, whatever terminal (or none) runs the suite: rich
# reads COLUMNS when a console is made, so it is set before any test imports the CLI. A test that
# checks a wider layout makes its own console.
os.environ["COLUMNS"] = "80"
os.environ.pop("LINES", None)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run a module's tests on one torch thread.

    Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine two threads spin
    and slow down 3-5x. Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
