"""The benchmark harness: budgets, determinism, parallel runs, aggregation, files and the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.bench import BENCHMARKS, BenchResult, Budget, RunCurve, run_benchmark
from nasforge.cli import app
from nasforge.errors import ConfigError, UnknownComponentError

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
HAVE_NB201 = importlib.util.find_spec("nasforge.space._nb201") is not None and (
    importlib.util.find_spec("nasforge.estimate._tables") is not None
)
HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None

needs_nb201 = pytest.mark.skipif(
    not HAVE_NB201 or not (BENCH / "nb201" / "nb201_cifar10.csv").is_file(),
    reason="needs the NB201 space/table modules and ../shared/benchmarks/nb201",
)
needs_macro = pytest.mark.skipif(
    not HAVE_NB201 or not (BENCH / "nas-bench-macro").is_dir(),
    reason="needs the MacroTable module and ../shared/benchmarks/nas-bench-macro",
)
needs_nb301 = pytest.mark.skipif(
    not HAVE_ORT or not (BENCH / "nb301-yahpo" / "model_v2.onnx").is_file(),
    reason="needs onnxruntime and ../shared/benchmarks/nb301-yahpo",
)


def _curves(result: BenchResult) -> list[tuple]:
    """Everything of the runs except wall-clock time."""
    return [
        (
            r.strategy,
            r.seed,
            r.sim_seconds,
            np.nan_to_num(r.signal, nan=-1).tolist(),
            np.nan_to_num(r.report, nan=-1).tolist(),
        )
        for r in result.runs
    ]


# ------------------------------------------------------------------ pure logic
def test_budget_parsing() -> None:
    assert Budget.parse("100q") == Budget(100, "queries") and Budget.parse("100q").queries == 100
    assert Budget.parse("12000s") == Budget(12000.0, "seconds") and str(Budget.parse("12000s")) == "12000s"
    assert Budget.parse(" 1.5e4 s").amount == 15000 and str(Budget.parse("250 queries")) == "250q"
    for bad in ("10x", "0q", "1.5q", "-3s", "q", 100, "", "0s"):
        with pytest.raises(ConfigError):
            Budget.parse(bad)  # type: ignore[arg-type]


def _hand_made() -> BenchResult:
    nan = math.nan
    runs = [
        RunCurve("a", 0, [10.0, 20.0, 30.0, 40.0], [nan, 70.0, 80.0, 80.0], [nan, 91.0, 93.0, 93.0], 0.5),
        RunCurve("a", 1, [5.0, 15.0, 50.0], [60.0, 60.0, 75.0], [92.0, 92.0, 94.0], 0.2),
        RunCurve("b", 0, [1.0], [50.0], [90.0], 0.1),
    ]
    return BenchResult(
        benchmark="nb201", budget=Budget(4, "queries"), strategies=["a", "b"], seeds=[0, 1],
        signal="valid_acc_12ep", report="test_acc", optimum=94.0, runs=runs,
    )  # fmt: skip


def test_checkpoint_aggregation_by_queries() -> None:
    result = _hand_made()
    assert result.default_checkpoints() == [4.0]
    a, b = result.summary([1, 2, 4])
    # query 1: seed 0 has no completed query yet (NaN, left out), seed 1 has 92
    assert [(c["mean"], c["std"], c["n"]) for c in a["checkpoints"]] == [
        (92.0, 0.0, 1),
        (91.5, 0.5, 2),
        (93.5, 0.5, 2),
    ]
    # a run that stopped early keeps its final pick
    assert [c["mean"] for c in b["checkpoints"]] == [90.0, 90.0, 90.0]
    assert a["queries_mean"] == 3.5 and a["queries_per_second"] == pytest.approx(7 / 0.7)
    table = result.table([1, 2, 4])
    assert "| a | 92.00 ± 0.00 | 91.50 ± 0.50 | 93.50 ± 0.50 | 3.5 | 10 |" in table
    assert table.splitlines()[0].startswith("| strategy | test_acc @ 1 q")


def test_checkpoint_aggregation_by_seconds() -> None:
    result = _hand_made()
    values = [result.values_at("a", t, "seconds").tolist() for t in (4, 12, 30, 100)]
    assert np.allclose(np.nan_to_num(values, nan=-1), [[-1, -1], [-1, 92], [93, 92], [93, 94]])
    seconds = BenchResult(**{**result.__dict__, "budget": Budget(100.0, "seconds")})
    assert seconds.default_checkpoints() == [10.0, 25.0, 50.0, 75.0, 100.0]
    cells = seconds.summary([12, 30, 100])[0]["checkpoints"]
    assert [(c["mean"], c["n"]) for c in cells] == [(92.0, 1), (92.5, 2), (93.5, 2)]


def test_json_round_trip_and_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = _hand_made()
    path = result.to_json(tmp_path / "out" / "bench.json")
    data = json.loads(path.read_text())  # strict JSON: NaN written as null
    assert data["runs"][0]["report"][0] is None and data["summary"][0]["strategy"] == "a"
    back = BenchResult.from_json(path)
    assert _curves(back) == _curves(result) and back.table() == result.table()
    for kwargs in ({}, {"regret": True}, {"axis": "seconds", "regret": True}):
        png = result.plot(tmp_path / f"plot{len(kwargs)}.png", **kwargs)  # type: ignore[arg-type]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError):
        BenchResult.from_json(tmp_path / "missing.json")


def test_bad_arguments_fail_before_any_run() -> None:
    with pytest.raises(ConfigError, match="valid benchmarks: nb201, nb301, nb_macro"):
        run_benchmark("nb999", ["rs"], root=BENCH)
    with pytest.raises(UnknownComponentError, match="unknown strategy 'nope'"):
        run_benchmark("nb201", ["rs", "nope"], root=BENCH)
    with pytest.raises(ConfigError, match="more than once"):
        run_benchmark("nb201", ["rs", "random"], root=BENCH)
    with pytest.raises(ConfigError, match="not in strategies"):
        run_benchmark("nb201", ["rs"], root=BENCH, strategy_options={"re": {"population": 5}})
    for bad in ({"seeds": 0}, {"seeds": [1, 1]}, {"workers": 0}, {"budget": "5x"}):
        with pytest.raises(ConfigError):
            run_benchmark("nb201", ["rs"], root=BENCH, **bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ real runs (NB-301 surrogate)
@needs_nb301
def test_query_budget_is_exact_and_runs_are_deterministic() -> None:
    kwargs = {"seeds": [0, 1, 2], "budget": "25q", "root": BENCH}
    first = run_benchmark("nb301", ["rs", "re"], **kwargs)  # type: ignore[arg-type]
    assert [(r.strategy, r.seed) for r in first.runs] == [(s, i) for s in ("rs", "re") for i in range(3)]
    for run in first.runs:
        assert run.queries == 25
        assert np.all(np.diff(run.signal) >= 0) and run.report == run.signal  # nb301 reports its signal
        assert 0.9 < run.report[-1] < 0.95
        assert np.all(np.diff(run.sim_seconds) > 1000)  # every query costs its surrogate runtime
    again = run_benchmark("nb301", ["rs", "re"], **kwargs)  # type: ignore[arg-type]
    assert _curves(again) == _curves(first)
    other = run_benchmark("nb301", ["rs"], seeds=[3], budget="25q", root=BENCH)
    assert other.runs[0].report != first.runs[0].report


@needs_nb301
def test_workers_2_gives_the_same_curves_as_workers_1() -> None:
    one = run_benchmark("nb301", ["rs", "re"], seeds=4, budget="15q", root=BENCH, workers=1)
    calls: list[tuple[int, int]] = []
    two = run_benchmark(
        "nb301", ["rs", "re"], seeds=4, budget="15q", root=BENCH, workers=2,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert _curves(two) == _curves(one)
    assert calls[-1] == (8, 8) and two.meta["workers"] == 2


# ------------------------------------------------------------------ NAS-Bench-201
@needs_nb201
def test_seconds_budget_stops_before_the_query_that_would_exceed_it() -> None:
    short = run_benchmark("nb201", ["rs", "re"], seeds=3, budget="3000s", root=BENCH)
    long = run_benchmark("nb201", ["rs", "re"], seeds=3, budget="6000s", root=BENCH)
    for cut, full in zip(short.runs, long.runs, strict=True):
        n = cut.queries
        assert n > 5 and cut.sim_seconds[-1] <= 3000
        assert full.sim_seconds[:n] == cut.sim_seconds and full.report[:n] == cut.report  # same run, cut
        assert full.sim_seconds[n] > 3000  # the next query would have exceeded the budget


@needs_nb301
def test_stopped_trials_cost_their_partial_runtime_in_a_seconds_budget() -> None:
    res = run_benchmark("nb301", ["hyperband", "rs"], seeds=2, budget="60000s", root=BENCH)
    hb = [r for r in res.runs if r.strategy == "hyperband"]
    rs = [r for r in res.runs if r.strategy == "rs"]
    for run in res.runs:
        assert run.sim_seconds[-1] <= 60000
        steps = np.diff([0.0, *run.sim_seconds])
        assert (steps > 0).all()  # every query costs something, stopped ones included
    # early stopping buys more queries than random search gets for the same simulated time
    assert min(r.queries for r in hb) > 2 * max(r.queries for r in rs)


@needs_nb201
def test_nb201_reports_test_acc_of_the_best_validation_pick() -> None:
    from nasforge.estimate._tables import NB201Table
    from nasforge.experiment import Experiment
    from nasforge.space import NB201Space

    result = run_benchmark("nb201", ["re"], seeds=[7], budget="60q", root=BENCH)
    # the same run through the public API by hand: Experiment seeded 7, evolution by name
    table = NB201Table(BENCH)
    exp = Experiment("by-hand", space=NB201Space(), objectives=["valid_acc_12ep"], seed=7)
    exp.run("evolution", table, n_trials=60)
    valid = [t.metrics["valid_acc_12ep"] for t in exp.trials]
    test = [t.metrics["test_acc"] for t in exp.trials]
    expected = [test[int(np.argmax(valid[: i + 1]))] for i in range(60)]
    run = result.runs[0]
    assert run.report == expected and run.signal == list(np.maximum.accumulate(valid))
    assert run.sim_seconds == pytest.approx(np.cumsum([t.metrics["sim_seconds"] for t in exp.trials]))
    assert len({t.architecture.key for t in exp.trials}) == 60  # dedup: no architecture paid twice
    assert BENCHMARKS["nb201"].optimum == pytest.approx(table.optimum_test_acc, abs=1e-4)


@needs_nb201
def test_strategy_options_reach_the_strategy() -> None:
    default = run_benchmark("nb201", ["re"], seeds=[0], budget="40q", root=BENCH)
    small = run_benchmark(
        "nb201",
        ["re"],
        seeds=[0],
        budget="40q",
        root=BENCH,
        strategy_options={"evolution": {"population": 5}},
    )
    assert small.runs[0].report != default.runs[0].report
    with pytest.raises(ConfigError, match="has no option 'popsize'"):
        run_benchmark(
            "nb201", ["re"], seeds=[0], budget="5q", root=BENCH, strategy_options={"re": {"popsize": 5}}
        )


@needs_macro
def test_nb_macro_signal_is_the_reported_test_accuracy() -> None:
    from nasforge.estimate._tables import MacroTable

    result = run_benchmark("nb_macro", ["rs"], seeds=2, budget="30q", root=BENCH)
    assert all(r.report == r.signal and r.queries == 30 for r in result.runs)
    optimum = MacroTable(BENCH).optimum_test_acc
    assert BENCHMARKS["nb_macro"].optimum == pytest.approx(optimum, abs=1e-5)
    assert all(85 < r.report[-1] <= optimum for r in result.runs)
    with pytest.raises(ConfigError, match="no simulated cost"):
        run_benchmark("nb_macro", ["rs"], seeds=1, budget="1000s", root=BENCH)


# ------------------------------------------------------------------ CLI
runner = CliRunner()


def test_cli_unknown_strategy_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "--benchmark",
            "nb201",
            "--strategies",
            "rs,nope",
            "--bench-dir",
            str(BENCH),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown strategy 'nope'" in lines[0]
    assert not (tmp_path / "bench.json").exists()
    bad_budget = runner.invoke(app, ["bench", "--budget", "soon", "--bench-dir", str(BENCH)])
    assert bad_budget.exit_code == 2 and "cannot read budget" in bad_budget.output


@needs_nb201
def test_cli_tiny_real_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = runner.invoke(
        app,
        ["bench", "--benchmark", "nb201", "--strategies", "rs,re", "--seeds", "2", "--budget", "20q",
         "--bench-dir", str(BENCH), "--out", str(tmp_path / "res")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "± " in result.output and "@ 20 q" in result.output
    saved = BenchResult.from_json(tmp_path / "res" / "bench.json")
    assert saved.strategies == ["rs", "re"] and [r.queries for r in saved.runs] == [20] * 4
    assert (tmp_path / "res" / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("command", ["bench", "rank"])
def test_cli_unwritable_out_is_one_line_before_any_run(command: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    for out, why in (
        (tmp_path / "notes.txt" / "results", "notes.txt is a file, not a directory"),
        (Path("/proc/results"), "/proc does not accept new files"),  # refused even for root
    ):
        # no benchmark tables here: a run would fail on them, so the check comes first
        args = [command, "--bench-dir", str(tmp_path / "no-tables"), "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert text.startswith("error: cannot write the output directory") and why in text, text
        assert "give another --out DIR" in text and "Traceback" not in result.output
