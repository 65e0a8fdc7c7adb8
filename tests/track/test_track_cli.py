"""``nasforge search --track ... / --tracking-uri`` and the config's ``track:`` key, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from nasforge import Trial
from nasforge.cli import _track_options, app
from nasforge.config import parse_config

runner = CliRunner()
QUICK = ["--trials", "2", "--epochs", "1", "--final-epochs", "0", "-q"]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NASFORGE_DATA_DIR", raising=False)
    return tmp_path


def _scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_search_tracks_to_tensorboard_and_mlflow(
    in_tmp: Path, mlflow_search: tuple[list[Trial], Path]
) -> None:
    pytest.importorskip("tensorboard")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{mlflow_search[1] / 'mlflow.db'}"  # a store that exists: no schema set-up here
    result = runner.invoke(app, ["search", *QUICK, "--track", "tensorboard", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "digits-evolution"

    accuracy = _scalars(run / "tensorboard", "trial/val_accuracy")
    assert [step for step, _ in accuracy] == [0, 1] and all(0 <= v <= 1 for _, v in accuracy)
    assert [step for step, _ in _scalars(run / "tensorboard", "best/val_accuracy")] == [0, 1]

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("digits-evolution")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("nasforge.run_dir") == str(run.resolve())]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["trial 0", "trial 1"]
    for child in children:
        assert "depth" in child.data.params and "val_accuracy" in child.data.metrics
        assert len(client.get_metric_history(child.info.run_id, "learning_curve")) == 1  # one epoch

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["track"] == [{"name": "tensorboard"}, {"name": "mlflow", "tracking_uri": uri}]


def test_the_config_track_key(in_tmp: Path) -> None:
    pytest.importorskip("tensorboard")
    cfg = in_tmp / "s.yaml"
    cfg.write_text(
        "name: tracked\ntrials: 1\nestimator: {name: train, epochs: 1}\nfinal: {epochs: 0}\ntrack: tb\n"
    )
    result = runner.invoke(app, ["search", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    assert [step for step, _ in _scalars(in_tmp / "runs" / "tracked" / "tensorboard", "trial/params")] == [0]


def test_a_tracker_that_fails_does_not_stop_the_search(in_tmp: Path) -> None:
    pytest.importorskip("mlflow")
    from nasforge.track import TrackingWarning

    with pytest.warns(TrackingWarning, match="mlflow tracking failed at trial 0"):
        result = runner.invoke(app, ["search", *QUICK, "--tracking-uri", "nosuchscheme://nowhere"])
    assert result.exit_code == 0, result.output
    rows = (in_tmp / "runs" / "digits-evolution" / "leaderboard.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",COMPLETE," in row for row in rows[1:])  # header + both trials


@pytest.mark.parametrize(
    ("config", "names", "uri", "expected"),
    [
        (None, ["tensorboard"], None, ["tensorboard"]),
        ("mlflow", ["tensorboard,mlflow", "tb"], None, ["tensorboard", "mlflow", "tb"]),
        (
            ["tensorboard"],
            None,
            "http://h:5000",
            ["tensorboard", {"name": "mlflow", "tracking_uri": "http://h:5000"}],
        ),
        (  # --track keeps the config's options of a tracker it names again
            [{"name": "mlflow", "experiment_name": "e"}, {"name": "tensorboard", "log_dir": "x"}],
            ["mlflow"],
            "u",
            [{"name": "mlflow", "experiment_name": "e", "tracking_uri": "u"}],
        ),
        (["tensorboard"], None, None, ["tensorboard"]),
    ],
)
def test_track_options_merge_into_the_config(
    config: Any, names: list[str] | None, uri: str | None, expected: list[Any]
) -> None:
    data: dict[str, Any] = {} if config is None else {"track": config}
    _track_options(data, names, uri)
    assert data.get("track", config) == expected
    parse_config(data)  # and the result is a valid config


BAD = [
    (["--track", "tensorbord"], None, "unknown tracker 'tensorbord'. Did you mean 'tensorboard'?"),
    ([], "track: [{log_dir: x}]", "each track entry is a tracker name or a mapping with a 'name'"),
    ([], "track: 3", "track must be a tracker name or a list of them"),
    (
        [],
        "track: [{name: tensorboard, logdir: x}]",
        "tracker 'tensorboard' has no option 'logdir'. Did you mean",
    ),
]


@pytest.mark.parametrize(("args", "config", "message"), BAD)
def test_bad_tracking_input_is_one_line_and_exit_code_2(
    in_tmp: Path, args: list[str], config: str | None, message: str
) -> None:
    if config is not None:
        (in_tmp / "bad.yaml").write_text(config + "\n")
        args = [str(in_tmp / "bad.yaml"), *args]
    result = runner.invoke(app, ["search", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (in_tmp / "runs").exists()  # checked before any trial


def test_help_lists_the_tracking_options() -> None:
    result = runner.invoke(app, ["search", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--track" in result.output and "--tracking-uri" in result.output
