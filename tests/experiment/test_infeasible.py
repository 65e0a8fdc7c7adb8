"""Constraints no architecture can meet end the search with one clear error, never an endless loop."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.config import SearchConfig
from nasforge.errors import ConfigError, InfeasibleError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment
from nasforge.experiment._screening import MAX_SCREENED_IN_ROW
from nasforge.hardware import count_flops, count_params
from nasforge.registry import SPACES
from nasforge.testing import ToyEstimator, toy_space

runner = CliRunner()


@pytest.fixture(scope="module")
def task() -> nf.datasets.Task:
    return nf.datasets.load("digits")


@pytest.mark.parametrize(("shape", "classes", "width"), [((1, 8, 8), 10, 1.0), ((3, 12, 12), 4, 0.5)])
def test_chain_floor_bounds_every_network_and_the_all_pooling_one_meets_it(
    shape: tuple[int, int, int], classes: int, width: float
) -> None:
    space = nf.spaces.ChainCNN(depth=(1, 3), layer={"filters": [2, 8]}).bind(shape, classes)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    pools = {"depth": 1, "layer0.op": "maxpool", "layer0.kernel": 3, "layer0.stride": 1}
    archs.append(space.make({**pools, "layer0.padding": "same"}))
    counted = {"params": [], "flops": []}
    for arch in archs:
        model = arch.build(device="meta", width=width)
        counted["params"].append(count_params(model))
        counted["flops"].append(count_flops(model, shape))
    for metric, values in counted.items():
        floor = space.metric_floor(metric, width=width)
        assert floor is not None and min(values) >= floor, metric
    c = min(shape[0], max(1, round(2 * width)))  # the fewest channels the head can see
    assert space.metric_floor("params", width=width) == c * classes + classes
    # conv-only networks: the head sees at least the fewest filters, and convolutions add more
    convs = nf.spaces.ChainCNN(layer={"op": ["conv"], "filters": [16]}).bind(shape, classes)
    assert convs.metric_floor("flops") == 2 * 16 * classes
    assert space.metric_floor("latency_ms") is None and toy_space().metric_floor("params") is None


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_mbconv_floor_bounds_every_network(width: float) -> None:
    shape = (3, 12, 12)
    small = {"stages": [{"width": [4, 8], "stride": 1}, {"width": [2, 6], "stride": 2}], "stem": 4, "head": 8}
    for space in (nf.spaces.MBConvSpace(), nf.spaces.MBConvSpace(**small, depth=[1])):
        space = space.bind(shape, 5)
        rng = np.random.default_rng(1)
        models = [space.sample(rng).build(device="meta", width=width) for _ in range(12)]
        params, flops = space.metric_floor("params", width=width), space.metric_floor("flops", width=width)
        assert params is not None and min(count_params(m) for m in models) >= params
        assert flops is not None and min(count_flops(m, shape) for m in models) >= flops


@pytest.mark.parametrize("name", SPACES.names())
def test_every_registered_space_s_floor_is_a_lower_bound(name: str) -> None:
    """A space that offers a floor must never reject an architecture it holds (None: no floor)."""
    space = SPACES.create(name).bind((3, 16, 16), 10)
    floors = {m: space.metric_floor(m) for m in ("params", "flops")}
    if all(v is None for v in floors.values()):
        pytest.skip(f"{name} offers no floor (its constraints are found out by screening)")
    rng = np.random.default_rng(2)
    for _ in range(5):
        model = space.sample(rng).build(device="meta")
        counted = {"params": count_params(model), "flops": count_flops(model, (3, 16, 16))}
        assert all(floor is None or counted[m] >= floor for m, floor in floors.items()), (name, counted)


def test_an_impossible_size_bound_fails_before_any_trial(task, tmp_path: Path) -> None:
    space = nf.spaces.ChainCNN(depth=(2, 3))
    exp = Experiment("tiny", space=space, constraints=["params <= 10"], run_dir=tmp_path / "r", seed=0)
    est = nf.TrainEstimator(task, epochs=1)
    with pytest.raises(InfeasibleError, match=r"params <= 10 cannot be met.*at least 20 parameters"):
        exp.run("random", est, n_trials=2)
    assert exp.trials == []
    # a bound the smallest network meets is not rejected at once (screening decides)
    ok = Experiment("ok", space=space, constraints=["params <= 20"], seed=0)
    ok.run("random", est, n_trials=1, max_screened=2000)
    assert ok.best() is not None and ok.best().metrics["params"] <= 20  # type: ignore[union-attr]


def test_nothing_feasible_found_by_screening_is_an_error_naming_the_smallest_value(
    task, tmp_path: Path
) -> None:
    # conv-only networks: the floor (the head alone, 320 FLOPs) is below the bound, so only
    # screening can find out that the convolutions always add more
    space = nf.spaces.ChainCNN(depth=(1, 2), layer={"op": ["conv"], "filters": [16, 32]})
    exp = Experiment("convs", space=space, constraints=["flops <= 500"], run_dir=tmp_path, seed=0)
    with pytest.raises(InfeasibleError) as info:
        exp.run("random", nf.TrainEstimator(task, epochs=1), n_trials=2, max_screened=6)
    message = str(info.value)
    smallest = min(t.metrics["flops"] for t in exp.trials)
    assert f"no architecture satisfies flops <= 500 (smallest flops seen {smallest:,})" in message
    assert "the last 6 proposals in a row" in message and "max_screened" in message
    assert len(exp.trials) == 6 and all(t.screened for t in exp.trials)
    assert "\n" not in message
    # each screened proposal is stored finished, in one write, and reads back the same
    stored = Experiment.open(tmp_path, read_only=True).trials
    assert [(t.number, t.status, t.metrics, t.error) for t in stored] == [
        (t.number, "SCREENED", t.metrics, t.error) for t in exp.trials
    ]


class _Cheap(Estimator):
    """A cheap metric ``cost = a`` known before evaluation; the score is ``a`` too."""

    def cheap_metrics(self, arch, names):
        return {"cost": float(arch.params["a"])}

    def evaluate(self, arch, ctx: TrialContext):
        return {"score": float(arch.params["a"]), "cost": float(arch.params["a"])}


def test_after_trained_trials_a_screened_streak_stops_with_a_warning(caplog) -> None:
    exp = Experiment("toy", space=toy_space(), objectives=["score"], constraints=["cost < 0"], seed=1)
    exp.run("random", ToyEstimator(), n_trials=1)  # a trial trained before the constraint bites
    with caplog.at_level(logging.WARNING, logger="nasforge"):
        exp.run("random", _Cheap(), n_trials=10, max_screened=40)
    assert [t.number for t in exp.trials if not t.screened] == [0]
    assert len(exp.trials) == 41 and exp.finished_count() == 1
    assert "stopping: no architecture satisfies cost < 0 (smallest cost seen 0)" in caplog.text
    assert "since the last trained trial" in caplog.text
    with pytest.raises(ConfigError, match="max_screened must be a positive integer"):
        exp.run("random", _Cheap(), n_trials=10, max_screened=0)


def test_config_default_matches_the_library() -> None:
    assert SearchConfig().max_screened == MAX_SCREENED_IN_ROW


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('constraints: ["params <= 10"]\n', "constraint params <= 10 cannot be met"),
        (
            'constraints: ["flops <= 500"]\nmax_screened: 4\n'
            "space: {name: chain_cnn, depth: [1, 2], layer: {op: [conv]}}\n",
            "no architecture satisfies flops <= 500 (smallest flops seen",
        ),
    ],
)
def test_cli_impossible_constraint_is_one_line_exit_2_and_leaves_no_run(
    in_tmp: Path, config: str, message: str
) -> None:
    cfg = in_tmp / "c.yaml"
    cfg.write_text(config + "trials: 2\nfinal: {epochs: 1}\n")
    result = runner.invoke(app, ["search", str(cfg)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output and "failed:" not in result.output  # not a line each
    assert not (in_tmp / "runs").exists() or not any((in_tmp / "runs").iterdir())


def test_the_message_names_each_constraint_when_none_alone_rules_everything_out() -> None:
    from nasforge.experiment._screening import ScreenedStreak
    from nasforge.objective import MetricConstraint

    size, cost = MetricConstraint.parse("params <= 1000"), MetricConstraint.parse("flops <= 5")
    streak = ScreenedStreak([size, cost])
    streak.add({"params": 2000, "flops": 1})
    streak.add({"params": 10, "flops": 50})
    assert streak.message(before_any=True).startswith(
        "no architecture satisfies all of params <= 1000 (violated by 1, smallest params seen 2,000) and "
        "flops <= 5 (violated by 1, smallest flops seen 50): the last 2 proposals in a row violated one "
        "of them each before any trial was trained"
    )


def test_the_screening_counts_what_the_profiler_counts() -> None:
    from nasforge.experiment._screening import CHEAP_METRICS
    from nasforge.hardware._profiler import SCREEN_COUNTS

    assert CHEAP_METRICS == SCREEN_COUNTS  # written twice only so that the experiment loads no torch
