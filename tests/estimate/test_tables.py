"""NB201Table, MacroTable and bench_root against the real tables in ``../shared/benchmarks``.

Tests that need a table skip when it is absent; error handling is tested on temporary folders.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from nasforge.bench import bench_file, bench_root
from nasforge.errors import ConfigError, DataError, SpaceError
from nasforge.estimate import TrialContext
from nasforge.estimate._tables import MacroTable, NB201Table
from nasforge.registry import ESTIMATORS
from nasforge.space import Architecture, NB201Space, SearchSpace
from nasforge.space._dimensions import Choice

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
NB201_CSV = BENCH / "nb201" / "nb201_cifar10.csv"
MACRO_JSON = BENCH / "nas-bench-macro" / "nas-bench-macro_cifar10.json"
CTX = TrialContext(0, seed=0)


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"benchmark table not found at {path} (shared benchmarks are not on this machine)")


@pytest.fixture(scope="module")
def table() -> NB201Table:
    _need(NB201_CSV)
    return NB201Table(BENCH)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    _need(NB201_CSV)
    with NB201_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_matches_the_csv(table: NB201Table, rows: list[dict[str, str]]) -> None:
    space = NB201Space()
    rng = np.random.default_rng(0)
    for i in [*rng.choice(len(rows), 200, replace=False).tolist(), 0, 15_624]:
        r = rows[i]
        metrics = table.evaluate(space.from_arch_str(r["arch_str"]), CTX)
        assert set(metrics) == {
            "valid_acc_12ep", "test_acc", "train_time_12ep_s", "params_M", "flops_M", "index", "sim_seconds"
        }  # fmt: skip
        assert metrics["index"] == int(r["index"]) == i
        for k in ("valid_acc_12ep", "test_acc", "train_time_12ep_s", "params_M", "flops_M"):
            assert metrics[k] == float(r[k]) and type(metrics[k]) is float
        assert metrics["sim_seconds"] == metrics["train_time_12ep_s"]
        assert table.index_of(r["arch_str"]) == i


def test_vectorised_lookup_and_optimum(table: NB201Table, rows: list[dict[str, str]]) -> None:
    ops = np.array([[int(x) for x in rows[i]["ops"].split("-")] for i in (5, 6111, 42)])
    out = table.lookup(ops)
    assert out["index"].tolist() == [5, 6111, 42]
    assert out["test_acc"].tolist() == [float(rows[i]["test_acc"]) for i in (5, 6111, 42)]
    assert out["sim_seconds"].tolist() == [float(rows[i]["train_time_12ep_s"]) for i in (5, 6111, 42)]
    assert table.lookup(ops[0])["index"] == 5
    assert len(table) == 15_625
    assert table.optimum_test_acc == pytest.approx(94.3733, abs=1e-4)
    assert table.optimum_index == 6111
    assert table.optimum_metric == pytest.approx(84.892)
    # the cell best by validation accuracy among all is 13714, whose test accuracy is 94.373
    assert table.best_test(table.data.ops) == pytest.approx(94.3733, abs=1e-4)
    assert table.best_test(ops, by="test_acc") == float(rows[6111]["test_acc"])
    with pytest.raises(SpaceError):
        table.lookup(np.array([[0, 1, 2, 3, 4, 5]]))
    with pytest.raises(SpaceError):
        table.lookup(np.zeros((2, 5), dtype=int))


def test_architectures_of_other_spaces_with_int_ops(table: NB201Table) -> None:
    space = SearchSpace({f"edge{i}": Choice([0, 1, 2, 3, 4]) for i in range(6)})
    arch = space.make({f"edge{i}": v for i, v in enumerate([3, 3, 3, 1, 3, 2])})
    assert table.evaluate(arch, CTX)["index"] == 6111
    other = SearchSpace({"a": Choice([1])}).make({"a": 1})
    with pytest.raises(SpaceError, match="edge0"):
        table.evaluate(other, CTX)


def test_metric_option_and_registry(table: NB201Table) -> None:
    assert ESTIMATORS.get("nb201") is NB201Table
    old = ESTIMATORS.create("nb201", root=BENCH, metric="test_acc_nb201_old")
    metrics = old.evaluate(NB201Space().from_ops([3, 3, 3, 1, 3, 2]), CTX)
    assert metrics["test_acc_nb201_old"] == pytest.approx(94.3733, abs=1e-4)
    assert old.data is table.data  # one load per file
    with pytest.raises(ConfigError, match="metric"):
        NB201Table(BENCH, metric="accuracy")
    with pytest.raises(ConfigError, match="dataset"):
        NB201Table(BENCH, dataset="cifar-10")
    with pytest.raises(DataError, match=r"nb201_cifar100\.csv"):
        NB201Table(BENCH, dataset="cifar100")


def test_root_forms_env_var_and_pickle(table: NB201Table, monkeypatch: pytest.MonkeyPatch) -> None:
    assert NB201Table(BENCH / "nb201").path == table.path
    monkeypatch.setenv("NASFORGE_BENCH_DIR", str(BENCH))
    from_env = NB201Table()
    assert from_env.path == table.path
    copy = pickle.loads(pickle.dumps(from_env))
    assert len(pickle.dumps(from_env)) < 2000  # the table itself is not shipped
    assert (
        copy.evaluate(NB201Space().from_ops([0] * 6), CTX)["test_acc"]
        == table.data.columns["test_acc"][table.index_of("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")]
    )


def test_missing_table_raises_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"--bench-dir.*NASFORGE_BENCH_DIR"):
        NB201Table(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        NB201Table(tmp_path / "nowhere")
    monkeypatch.delenv("NASFORGE_BENCH_DIR", raising=False)
    with pytest.raises(DataError, match=r"--bench-dir.*NASFORGE_BENCH_DIR"):
        NB201Table()
    with pytest.raises(DataError, match="NASFORGE_BENCH_DIR"):
        MacroTable()
    with pytest.raises(DataError, match=r"nas-bench-macro_cifar10\.json"):
        MacroTable(tmp_path)


def test_corrupt_table_raises_data_error(tmp_path: Path) -> None:
    (tmp_path / "nb201_cifar10.csv").write_text("index,arch_str\n0,|none~0|\n")
    with pytest.raises(DataError, match="not an NB201 table"):
        NB201Table(tmp_path).evaluate(NB201Space().from_ops([0] * 6), CTX)
    (tmp_path / "nas-bench-macro_cifar10.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        _ = MacroTable(tmp_path).data


def test_bench_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bench_root(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("NASFORGE_BENCH_DIR", str(tmp_path))
    assert bench_root(None) == tmp_path.resolve()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "t.csv").write_text("")
    assert bench_file(None, "x", "t.csv") == tmp_path.resolve() / "x" / "t.csv"
    assert bench_file(tmp_path / "x", "x", "t.csv") == tmp_path.resolve() / "x" / "t.csv"
    monkeypatch.setenv("NASFORGE_BENCH_DIR", str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"\$NASFORGE_BENCH_DIR"):
        bench_root(None)


def test_macro_table() -> None:
    _need(MACRO_JSON)
    raw = json.loads(MACRO_JSON.read_text())
    macro = ESTIMATORS.create("nb_macro", root=BENCH)
    assert isinstance(macro, MacroTable)
    space = SearchSpace({f"layer{i}": Choice(["0", "1", "2"]) for i in range(8)})
    arch = space.make({f"layer{i}": c for i, c in enumerate("22212220")})
    metrics = macro.evaluate(arch, CTX)
    assert metrics == {
        "test_acc": pytest.approx(np.mean(raw["22212220"]["test_acc"])),
        "params": raw["22212220"]["params"],
        "flops": raw["22212220"]["flops"],
    }
    assert metrics["test_acc"] == pytest.approx(93.127, abs=1e-3)
    assert macro.optimum_test_acc == pytest.approx(93.127, abs=1e-3)
    ints = SearchSpace({f"layer{i}": Choice([0, 1, 2]) for i in range(8)})
    assert (
        macro.evaluate(ints.make({f"layer{i}": int(c) for i, c in enumerate("02012100")}), CTX)["params"]
        == raw["02012100"]["params"]
    )
    assert MacroTable(BENCH / "nas-bench-macro").path == macro.path
    bad = SearchSpace({f"layer{i}": Choice(["0", "3"]) for i in range(8)}).make(
        {f"layer{i}": "3" for i in range(8)}
    )
    with pytest.raises(SpaceError, match=r"layer0\.\.layer7"):
        macro.evaluate(bad, CTX)
    with pytest.raises(SpaceError):
        macro.evaluate(Architecture(space, {"layer0": "1"}, "k"), CTX)


LATENCY_CSV = BENCH / "nb201-latency" / "nb201_latency_ms.csv"


def test_nb201_latency_device_adds_latency_ms():
    _need(NB201_CSV)
    _need(LATENCY_CSV)
    table = NB201Table(BENCH, latency_device="raspi4")
    with LATENCY_CSV.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        row = next(reader)  # NB201 index 0
    expected = float(row[header.index("raspi4")])
    arch = NB201Space().from_arch_str(row[1])
    metrics = table.evaluate(arch, CTX)
    assert metrics["index"] == int(row[0]) and metrics["latency_ms"] == expected
    looked = table.lookup(np.array([NB201Space().to_ops(arch)]))
    assert looked["latency_ms"][0] == expected
    assert "latency_ms" not in NB201Table(BENCH).evaluate(arch, CTX)


def test_nb201_latency_errors(tmp_path):
    _need(NB201_CSV)
    _need(LATENCY_CSV)
    with pytest.raises(ConfigError, match="Did you mean 'raspi4'"):
        NB201Table(BENCH, latency_device="raspi")
    (tmp_path / "nb201").symlink_to(NB201_CSV.parent)  # the accuracy table without the latency one
    with pytest.raises(DataError, match=r"nb201_latency_ms\.csv"):
        NB201Table(tmp_path, latency_device="raspi4")


class _CountingTable(NB201Table):
    """An NB201Table that records which cells were queried (evaluated)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.queried: list[str] = []

    def evaluate(self, arch, ctx=None):  # type: ignore[no-untyped-def]
        self.queried.append(arch.key)
        return super().evaluate(arch, ctx)


def test_a_device_latency_constraint_is_checked_before_the_query():
    _need(NB201_CSV)
    _need(LATENCY_CSV)
    from nasforge.experiment import Experiment, TrialState

    table = _CountingTable(BENCH, latency_device="pixel3")
    arch = NB201Space().from_arch_str(table.data.arch_str[7])
    assert table.latency is not None
    assert table.cheap_metrics(arch, {"latency_ms", "test_acc"}) == {"latency_ms": float(table.latency[7])}
    assert table.cheap_metrics(arch, {"params_M"}) == {"params_M": table.evaluate(arch)["params_M"]}
    table.queried.clear()
    exp = Experiment(
        "lat", space=NB201Space(), objectives=["valid_acc_12ep"], constraints=["latency_ms <= 20"], seed=0
    )
    exp.run("evolution", table, n_trials=60)
    done = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    screened = [t for t in exp.trials if t.screened]
    # n_trials counts queries: the screened cells cost none and were never looked up
    assert len(done) == 60 == len(table.queried) == exp.finished_count()
    assert screened and len(exp.trials) == 60 + len(screened)
    assert all(t.feasible and t.metrics["latency_ms"] <= 20 for t in done)
    assert all(t.metrics["latency_ms"] > 20 and t.architecture.key not in table.queried for t in screened)
    assert all("latency_ms <= 20" in (t.error or "") for t in screened)
    best = exp.best()
    assert best is not None and best.metrics["latency_ms"] <= 20


def test_a_search_with_nothing_feasible_stops_with_an_error():
    _need(NB201_CSV)
    _need(LATENCY_CSV)
    from nasforge.errors import InfeasibleError
    from nasforge.experiment import Experiment
    from nasforge.experiment._screening import MAX_SCREENED_IN_ROW

    table = _CountingTable(BENCH, latency_device="pixel3")
    exp = Experiment(
        "none", space=NB201Space(), objectives=["valid_acc_12ep"], constraints=["latency_ms <= 0"], seed=0
    )
    with pytest.raises(InfeasibleError) as info:
        exp.run("random", table, n_trials=10)
    assert table.queried == [] and exp.finished_count() == 0
    assert len(exp.trials) == MAX_SCREENED_IN_ROW and all(t.screened for t in exp.trials)
    smallest = min(t.metrics["latency_ms"] for t in exp.trials)
    assert f"latency_ms <= 0 (smallest latency_ms seen {smallest:.4g})" in str(info.value)
    assert "loosen the constraint" in str(info.value)
