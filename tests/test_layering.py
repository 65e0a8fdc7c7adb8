"""The package's import layering, read from its source with ``ast`` (issue 20).

Layers, lowest first (``docs/architecture.md`` draws the same table):

====  ======================  ==============================================================
  0   base                    ``nasforge/_*.py`` helpers, ``errors``, ``registry``
  1   data/space              ``data``, ``space``, ``objective``, ``zoo``
  2   nn                      ``nn``, ``detect`` (the detection head and box operations)
  3   hardware                ``hardware``
  4   estimate                ``estimate``, ``trial`` (the trial record; ``Trial.train`` trains)
  5   execute                 ``execute``
  6   experiment/strategy     ``experiment``, ``strategy``, ``track``, ``config``
  7   deploy/report/bench     ``deploy``, ``report``, ``bench``, ``testing``
  8   cli                     ``cli``, the package itself (``nasforge/__init__.py``, the facade) and
                              ``nasforge/__main__.py`` (``python -m nasforge``)
====  ======================  ==============================================================

Rules:

1. **No import points up.** A module never imports one of a higher layer, neither at module level
   nor inside a function: a deferred import is still a dependency.
2. **No import cycle between units** (a subpackage, or a top-level module) through the imports that
   run when a module is imported (those at module level and in class bodies). Inside one layer a
   unit may import another that imports it back only from inside a function, and only where the
   design wants the mutual use (the experiment drives strategies; SPOS searches its supernet with an
   inner Experiment).
3. **A helper that moved to a low-level module is imported from there**, not from its old home,
   which re-exports it only until every caller has moved (:data:`MOVED_HELPERS`).

Imports under ``if TYPE_CHECKING:`` are ignored: they never run, so they make neither a run-time
dependency nor an import cycle, and an annotation may name a type of a higher layer (the objective
scores a ``Trial``). Registry targets (``"module:attr"`` strings in ``nasforge/registry.py``) are not
imports either: the registry resolves a name the user chose, the package's plug-in point.

:data:`KNOWN` lists the violations that other slices of issue 20 remove; the test fails on any
violation not listed there and on any entry that no longer occurs, so the list can only shrink. The
merge of all slices must leave it empty.
"""

from __future__ import annotations

import ast
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nasforge"

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"errors", "registry"})),  # and every nasforge/_*.py module
    ("data/space", frozenset({"data", "space", "objective", "zoo"})),
    ("nn", frozenset({"nn", "detect"})),
    ("hardware", frozenset({"hardware"})),
    ("estimate", frozenset({"estimate", "trial"})),  # trial: Trial.train trains the record
    ("execute", frozenset({"execute"})),
    ("experiment/strategy", frozenset({"experiment", "strategy", "track", "config"})),
    ("deploy/report/bench", frozenset({"deploy", "report", "bench", "testing"})),
    # "nasforge": the package's own __init__; "__main__": python -m nasforge, the command line
    ("cli", frozenset({"cli", "nasforge", "__main__"})),
)

#: helper name -> (the module it left, its low-level home)
MOVED_HELPERS: dict[str, tuple[str, str]] = {
    "check_int": ("nasforge.strategy._util", "nasforge._checks"),
    "torch_threads": ("nasforge.estimate._loop", "nasforge._threads"),
    "derive_seed": ("nasforge.experiment._experiment", "nasforge._seeds"),
}

_DETECTOR_IS_A_MODEL = (
    "detect/_model.py's Detector is the loaded-model type of a detector: it belongs with deploy.Model "
    "(issue 20's one model type, the deploy slice), after which nothing in detect imports deploy or "
    "estimate"
)
_ONE_MODEL_TYPE = (
    "training saves through deploy (a layer up): the trained-model type and its save() move to "
    "where estimate may build it (issue 20's one model type, the deploy slice)"
)
_DERIVE_SEED = (
    "derive_seed moves to nasforge/_seeds.py (the experiment slice); the merge changes this import "
    "to nasforge._seeds"
)

#: violation -> where it is and what removes it. Empty: the merge of issue 20's slices cleared it;
#: a new violation is fixed, not listed here.
KNOWN: dict[str, str] = {}


# ------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Import:
    """One import statement of the package, resolved to the nasforge module it loads."""

    importer: str  # dotted name of the importing module
    target: str  # dotted name of the imported nasforge module
    names: tuple[str, ...]  # the names of a ``from`` import
    path: str  # the importing file, relative to the repository
    line: int
    deferred: bool  # inside a function: runs when the function is called, not at import

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement below ``node`` with whether it is deferred; TYPE_CHECKING blocks skipped."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield from _statements(ast.Module(body=[stmt], type_ignores=[]), deferred)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, deferred
        inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _statements(child, inner)


def read_imports(source: str, module: str, path: str, is_package: bool, modules: set[str]) -> list[Import]:
    """The nasforge imports of one module's ``source``.

    ``from package import name`` loads ``package.name`` when that is a module of the package
    (``from nasforge import zoo``), else ``package`` itself (``from nasforge import Experiment``).
    """
    tree = ast.parse(source, filename=path)
    here = module if is_package else module.rpartition(".")[0]
    out: list[Import] = []
    for stmt, deferred in _statements(tree, False):
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name.split(".")[0] == "nasforge":
                    out.append(Import(module, alias.name, (), path, stmt.lineno, deferred))
            continue
        assert isinstance(stmt, ast.ImportFrom)
        if stmt.level:
            base = here.split(".")[: len(here.split(".")) - stmt.level + 1]
            source_module = ".".join([*base, *([stmt.module] if stmt.module else [])])
        else:
            source_module = stmt.module or ""
        if source_module.split(".")[0] != "nasforge":
            continue
        names = tuple(alias.name for alias in stmt.names)
        submodules = [f"{source_module}.{n}" for n in names if f"{source_module}.{n}" in modules]
        if len(submodules) < len(names):
            out.append(Import(module, source_module, names, path, stmt.lineno, deferred))
        out.extend(Import(module, sub, (), path, stmt.lineno, deferred) for sub in submodules)
    return out


def package_imports(root: Path = PACKAGE) -> tuple[set[str], list[Import]]:
    """Every module of the package under ``root`` and every nasforge import they make."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    imports: list[Import] = []
    for f in files:
        rel = str(f.relative_to(root.parent))
        imports += read_imports(f.read_text(), module_name(f, root), rel, f.name == "__init__.py", modules)
    return modules, imports


def unit(module: str) -> str:
    """The subpackage or top-level module ``module`` belongs to (``nasforge`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer(module: str) -> int | None:
    name = unit(module)
    if name.startswith("_") and name != "__main__":
        return 0
    for level, (_, members) in enumerate(LAYERS):
        if name in members:
            return level
    return None


# ------------------------------------------------------------------------------------- checking


def upward(imports: Iterable[Import]) -> dict[str, list[Import]]:
    """Rule 1: ``"importer -> target"`` for every import of a higher layer, with its statements."""
    found: dict[str, list[Import]] = defaultdict(list)
    for imp in imports:
        low, high = layer(imp.importer), layer(imp.target)
        if low is not None and high is not None and high > low:
            found[f"{imp.importer} -> {imp.target}"].append(imp)
    return dict(found)


def cycles(imports: Iterable[Import]) -> dict[str, list[Import]]:
    """Rule 2: ``"cycle a <-> b"`` for every strongly connected set of units (module-level imports),
    with the imports that join them."""
    edges: dict[str, set[str]] = defaultdict(set)
    by_pair: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in imports:
        a, b = unit(imp.importer), unit(imp.target)
        if a != b and not imp.deferred:
            edges[a].add(b)
            by_pair[a, b].append(imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    found = {}
    for component in components:
        if len(component) > 1:
            joins = [imp for (a, b), imps in sorted(by_pair.items()) if {a, b} <= component for imp in imps]
            found["cycle " + " <-> ".join(sorted(component))] = joins
    return found


def moved(imports: Iterable[Import]) -> dict[str, list[Import]]:
    """Rule 3: ``"importer imports name from old"`` for a moved helper imported from its old home."""
    found: dict[str, list[Import]] = defaultdict(list)
    for imp in imports:
        for name in imp.names:
            if name in MOVED_HELPERS and imp.target == MOVED_HELPERS[name][0]:
                found[f"{imp.importer} imports {name} from {imp.target}"].append(imp)
    return dict(found)


def _report(found: dict[str, list[Import]], what: str) -> str:
    lines = [f"{len(found)} {what} (fix them, or if another slice of issue 20 must, list them in KNOWN):"]
    for key, imps in sorted(found.items()):
        lines.append(f"  {key}")
        lines += [f"      {imp.where}" + (" (inside a function)" if imp.deferred else "") for imp in imps]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def package() -> tuple[set[str], list[Import]]:
    return package_imports()


def test_every_module_has_a_layer(package: tuple[set[str], list[Import]]) -> None:
    modules, _ = package
    homeless = sorted({unit(m) for m in modules if layer(m) is None})
    assert not homeless, f"place these in LAYERS (and docs/architecture.md): {homeless}"


def test_no_import_points_up_the_layers(package: tuple[set[str], list[Import]]) -> None:
    found = {k: v for k, v in upward(package[1]).items() if k not in KNOWN}
    assert not found, _report(found, "imports point up the layers")


def test_no_import_cycle_between_subpackages(package: tuple[set[str], list[Import]]) -> None:
    found = {k: v for k, v in cycles(package[1]).items() if k not in KNOWN}
    assert not found, _report(found, "import cycles between subpackages")


def test_moved_helpers_are_imported_from_their_new_home(package: tuple[set[str], list[Import]]) -> None:
    found = {k: v for k, v in moved(package[1]).items() if k not in KNOWN}
    homes = ", ".join(f"{name} from {new}" for name, (_, new) in MOVED_HELPERS.items())
    assert not found, _report(found, f"helpers imported from their old home (import {homes})")


def test_known_violations_still_occur(package: tuple[set[str], list[Import]]) -> None:
    imports = package[1]
    occurring = {**upward(imports), **cycles(imports), **moved(imports)}
    gone = sorted(set(KNOWN) - set(occurring))
    assert not gone, f"these KNOWN violations are gone: delete them from KNOWN: {gone}"


# ------------------------------------------------------------------------------------- the reader


def test_the_reader_sees_deferred_imports_resolves_submodules_and_skips_type_checking(tmp_path: Path) -> None:
    root = tmp_path / "nasforge"
    (root / "space").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "errors.py").write_text("")
    (root / "space" / "__init__.py").write_text("from . import _base\nfrom ._base import thing\n")
    (root / "space" / "_base.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            import numpy
            from nasforge import errors, NasforgeError
            if TYPE_CHECKING:
                from nasforge.cli import app
            else:
                import nasforge.registry
            class Thing:
                from nasforge.hardware import count_params
                def build(self):
                    from nasforge.nn import build_chain_cnn
                    return lambda: __import__("os")
            """
        )
    )
    modules, imports = package_imports(root)
    assert modules == {"nasforge", "nasforge.errors", "nasforge.space", "nasforge.space._base"}
    seen = {(i.importer, i.target, i.names, i.deferred) for i in imports}
    assert seen == {
        ("nasforge.space", "nasforge.space._base", (), False),
        ("nasforge.space", "nasforge.space._base", ("thing",), False),
        ("nasforge.space._base", "nasforge.errors", (), False),
        ("nasforge.space._base", "nasforge", ("errors", "NasforgeError"), False),
        ("nasforge.space._base", "nasforge.registry", (), False),
        ("nasforge.space._base", "nasforge.hardware", ("count_params",), False),  # a class body runs
        ("nasforge.space._base", "nasforge.nn", ("build_chain_cnn",), True),
    }
    up = upward(imports)
    assert set(up) == {
        "nasforge.space._base -> nasforge",  # the package's __init__ is the top layer
        "nasforge.space._base -> nasforge.hardware",
        "nasforge.space._base -> nasforge.nn",
    }


def test_cycles_count_module_level_imports_between_units_only() -> None:
    def imp(a: str, b: str, deferred: bool = False) -> Import:
        return Import(a, b, (), "x.py", 1, deferred)

    assert set(cycles([imp("nasforge.a._x", "nasforge.b"), imp("nasforge.b._y", "nasforge.a")])) == {
        "cycle a <-> b"
    }
    assert (
        cycles([imp("nasforge.a._x", "nasforge.b"), imp("nasforge.b._y", "nasforge.a", deferred=True)]) == {}
    )
    assert cycles([imp("nasforge.a._x", "nasforge.a._y"), imp("nasforge.a._y", "nasforge.a._x")]) == {}
    three = [
        imp("nasforge.a", "nasforge.b"),
        imp("nasforge.b", "nasforge.c"),
        imp("nasforge.c", "nasforge.a"),
    ]
    assert set(cycles(three)) == {"cycle a <-> b <-> c"}
