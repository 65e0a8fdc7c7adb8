"""The NAS-Bench-301 surrogate: README sanity figures, the output-order pitfall, encoding, reporting."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import ConfigError, DataError, SpaceError, TrialPruned
from nasforge.estimate import TrialContext
from nasforge.experiment import Experiment, TrialState
from nasforge.registry import ESTIMATORS
from nasforge.space._darts import CONFIGSPACE_PREFIX, DartsSpace
from nasforge.testing import toy_space

pytest.importorskip("onnxruntime", reason="the NAS-Bench-301 surrogate needs onnxruntime")

from nasforge.estimate._nb301 import CAT_NAMES, OUTPUTS, NB301Surrogate

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
FOLDER = BENCH / "nb301-yahpo"
if not (FOLDER / "model_v2.onnx").is_file():
    pytest.skip(f"NAS-Bench-301 surrogate files not found in {FOLDER}", allow_module_level=True)

SPACE = DartsSpace()


@pytest.fixture(scope="module")
def est() -> NB301Surrogate:
    return NB301Surrogate(BENCH)


@pytest.fixture(scope="module")
def archs() -> list:
    rng = np.random.default_rng(0)
    return [SPACE.sample(rng) for _ in range(1000)]


def test_readme_sanity_figures_at_epoch_98(est: NB301Surrogate, archs: list) -> None:
    out = est.predict(archs, epoch=98)
    assert out.shape == (1000, 4) and out.dtype == np.float32
    acc, ce, runtime = out[:, 0], out[:, 1], out[:, 2]
    # README (1,000 random configs): val_accuracy 0.902 / 0.924 / 0.934, cross-entropy mean 0.290,
    # runtime 3,340 / 4,980 / 7,083 s
    assert 0.90 <= acc.mean() <= 0.935 and abs(acc.mean() - 0.924) < 0.003
    assert acc.min() > 0.85 and acc.max() < 0.95
    assert abs(ce.mean() - 0.290) < 0.02
    assert abs(runtime.mean() - 4980) < 300 and runtime.min() > 2500 and runtime.max() < 8000


def test_metrics_read_runtime_from_column_2_not_1(est: NB301Surrogate, archs: list) -> None:
    # yahpo-gym 1.0.2 calls column 1 "runtime"; it is the cross-entropy (< 1), the runtime is thousands of s
    assert OUTPUTS == ("val_accuracy", "val_cross_entropy", "runtime", "runtime_increase")
    raw = est.predict(archs[:5], epoch=98)
    for arch, row in zip(archs[:5], raw, strict=True):
        m = est.evaluate(arch, TrialContext(0, 0))
        assert m["val_accuracy"] == pytest.approx(float(row[0]), abs=1e-6)
        assert m["val_cross_entropy"] == pytest.approx(float(row[1]), abs=1e-6) and m["val_cross_entropy"] < 1
        assert m["runtime"] == m["sim_seconds"] == pytest.approx(float(row[2]), rel=1e-6)
        assert m["runtime"] > 1000 and m["epoch"] == 98
        assert set(m) == {"val_accuracy", "val_cross_entropy", "runtime", "sim_seconds", "epoch"}


def test_learning_curve_rises_with_the_epoch(est: NB301Surrogate, archs: list) -> None:
    out = est.predict([archs[1]] * 4, epoch=[1, 25, 50, 98])
    acc, runtime = out[:, 0], out[:, 2]
    assert np.all(np.diff(acc) > 0) and np.all(np.diff(runtime) > 0)
    assert acc[0] < 0.75 and acc[-1] > 0.9  # README: 0.616 / 0.834 / 0.893 / 0.926 for one config


def test_encoding_uses_the_json_codes_and_zero_for_inactive(est: NB301Surrogate, archs: list) -> None:
    encoding = json.loads((FOLDER / "encoding_v2.json").read_text())
    assert len(CAT_NAMES) == 34 and set(CAT_NAMES) == set(SPACE.dimensions())
    for arch in archs[:50]:
        row = est.encode(arch)
        assert row.dtype == np.int32 and row.shape == (34,)
        assert int((row == 0).sum()) == 34 - 22
        for col, name in enumerate(CAT_NAMES):
            codes = encoding[CONFIGSPACE_PREFIX + name]
            expected = codes[arch.params[name]] if name in arch.params else codes["#na#"]
            assert row[col] == expected


def test_report_epochs_report_the_learning_curve(est: NB301Surrogate, archs: list) -> None:
    reporting = NB301Surrogate(BENCH, epoch=98, report_epochs=[50, 1, 25, 98])
    ctx = TrialContext(0, 0)
    m = reporting.evaluate(archs[2], ctx)
    assert list(ctx.reported) == [1, 25, 50]
    expected = est.predict([archs[2]] * 3, epoch=[1, 25, 50])[:, 0]
    assert np.allclose(list(ctx.reported.values()), expected, atol=1e-6)
    assert m["val_accuracy"] == pytest.approx(est.evaluate(archs[2], TrialContext(0, 0))["val_accuracy"])

    def stop_at_25(step: int, value: float) -> None:
        if step >= 25:
            raise TrialPruned(f"stopped at {step}")

    with pytest.raises(TrialPruned):
        reporting.evaluate(archs[2], TrialContext(0, 0, reporter=stop_at_25))


def test_hyperband_on_surrogate_epochs_records_the_cost_of_stopped_trials(est: NB301Surrogate) -> None:
    exp = Experiment("hb301", space=SPACE, objectives=["val_accuracy"], seed=0)
    exp.run("hyperband", est, n_trials=40)
    assert exp.scheduler is not None and exp.scheduler.max_resource == 98  # the estimator's epoch
    pruned = [t for t in exp.trials if t.state is TrialState.PRUNED]
    complete = [t for t in exp.trials if t.state is TrialState.COMPLETE]
    assert pruned and complete
    for t in pruned:  # reported exactly at its bracket's rungs; stopped at one, with that rung's cost
        rungs = exp.scheduler.milestones(t.number, 98)
        step = t.metrics["step"]
        assert set(t.intermediate) <= set(rungs) and step in rungs and t.metrics["epoch"] == step
        at_step = est.predict([t.architecture], epoch=step)[0]
        assert t.metrics["sim_seconds"] == pytest.approx(float(at_step[2]), rel=1e-6)
        assert t.metrics["val_accuracy"] == pytest.approx(float(at_step[0]), rel=1e-6)
    assert all(t.metrics["epoch"] == 98 for t in complete)


def test_lower_fidelity_is_cheaper(archs: list) -> None:
    low = NB301Surrogate(BENCH, epoch=12).evaluate(archs[3], TrialContext(0, 0))
    high = NB301Surrogate(BENCH).evaluate(archs[3], TrialContext(0, 0))
    assert low["epoch"] == 12 and low["sim_seconds"] < high["sim_seconds"] / 4
    assert low["val_accuracy"] < high["val_accuracy"]


def test_bad_input(est: NB301Surrogate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, 99, 12.5, True):
        with pytest.raises(ConfigError, match="epoch"):
            NB301Surrogate(BENCH, epoch=bad)
    with pytest.raises(ConfigError, match="report_epochs"):
        NB301Surrogate(BENCH, report_epochs=[0])
    with pytest.raises(DataError, match=r"model_v2\.onnx"):
        NB301Surrogate(tmp_path)
    monkeypatch.delenv("NASFORGE_BENCH_DIR", raising=False)
    with pytest.raises(DataError, match="NASFORGE_BENCH_DIR"):
        NB301Surrogate()
    toy = toy_space().sample(np.random.default_rng(0))
    with pytest.raises(SpaceError, match="'darts' space"):
        est.evaluate(toy, TrialContext(0, 0))


def test_registered_picklable_and_env_root(archs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_BENCH_DIR", str(BENCH))
    made = ESTIMATORS.create("nb301", epoch=50)
    assert isinstance(made, NB301Surrogate)
    first = made.evaluate(archs[4], TrialContext(0, 0))
    clone = pickle.loads(pickle.dumps(made))  # the ONNX session is left behind and rebuilt
    assert clone.evaluate(archs[4], TrialContext(0, 0)) == first


def test_searches_through_the_experiment(est: NB301Surrogate) -> None:
    exp = Experiment("nb301", space=DartsSpace(), objectives=["val_accuracy"], seed=0)
    exp.run(strategy="evolution", estimator=est, n_trials=30, strategy_options={"population": 10})
    assert [t.state for t in exp.trials] == [TrialState.COMPLETE] * 30
    best = exp.best()
    assert best is not None and 0.92 < best.value < 0.95  # type: ignore[operator]
