"""The examples in the package's docstrings run as tests (issue 20): a user copies them, so they
must stay true. Each module with ``>>>`` examples is one test; an example that needs files a
test machine may lack says ``# doctest: +SKIP``. The NB-201 table examples read
``../shared/benchmarks`` (``NASFORGE_BENCH_DIR``) and skip without it."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nasforge"
BENCH = PACKAGE.parent.parent / "shared" / "benchmarks"
#: modules whose examples read the benchmark tables
NEEDS_BENCH = {"nasforge.estimate._tables"}


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" not in path.read_text():
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_examples_are_found() -> None:
    assert len(_modules()) >= 20  # a broken finder would pass every test below by finding nothing


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name in NEEDS_BENCH:
        if not BENCH.is_dir():
            pytest.skip(f"its examples read the benchmark tables in {BENCH}, which is absent")
        monkeypatch.setenv("NASFORGE_BENCH_DIR", str(BENCH))
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    failed, attempted = result.failed, result.attempted
    assert failed == 0, f"{failed} of {attempted} docstring examples of {name} failed (output above)"
