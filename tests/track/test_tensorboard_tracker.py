"""TensorBoard tracking: a real toy search, its event files read back with TensorBoard's reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import Experiment
from nasforge.testing import ToyEstimator, toy_space

pytest.importorskip("tensorboard", reason="TensorBoard tracking needs: pip install 'nasforge[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nasforge.track import TensorBoardCallback, TrackingWarning


def read_events(log_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def test_scalars_best_so_far_learning_curves_and_architecture_text(tmp_path: Path) -> None:
    run = tmp_path / "run"
    exp = Experiment("toy-tb", space=toy_space(), objectives=["score"], run_dir=run, seed=0)
    with TensorBoardCallback() as tb:
        exp.run(
            strategy="random", estimator=ToyEstimator(fail_when=2, report_steps=3), n_trials=8, callbacks=[tb]
        )
    assert tb.failed is None
    events = read_events(run / "tensorboard")  # the default: beside the run's database
    complete = [t for t in exp.trials if t.state.value == "COMPLETE"]
    failed = [t for t in exp.trials if t.state.value == "FAIL"]
    assert complete and failed

    # one scalar per metric per trial, the trial number as step
    assert [(e.step, e.value) for e in events.Scalars("trial/score")] == [
        (t.number, t.metrics["score"]) for t in complete
    ]
    # the best primary objective so far, from the first complete trial on
    best, expected = None, []
    for t in exp.trials:
        if t.value is not None:
            best = t.value if best is None else max(best, t.value)
        if best is not None:
            expected.append((t.number, best))
    assert [(e.step, e.value) for e in events.Scalars("best/score")] == expected
    assert expected[-1][1] == exp.best().value  # type: ignore[union-attr]
    # each trial's learning curve under its own tag, epochs as steps
    for t in complete:
        curve = events.Scalars(f"learning_curve/trial_{t.number:04d}")
        assert [e.step for e in curve] == sorted(t.intermediate)  # float32 on disk:
        assert [e.value for e in curve] == pytest.approx([t.intermediate[s] for s in sorted(t.intermediate)])
    assert not any(f"trial_{t.number:04d}" in tag for t in failed for tag in events.Tags()["scalars"])
    # the architecture as text, one entry per trial
    texts = {
        e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors("architecture/text_summary")
    }
    assert sorted(texts) == [t.number for t in exp.trials]
    for t in exp.trials:
        assert f"**trial {t.number}**: {t.state.value}" in texts[t.number]
        for key, value in t.architecture.params.items():
            assert f"| {key} | {value} |" in texts[t.number]
    assert "planted failure for a=2" in texts[failed[0].number]


def test_an_explicit_log_dir_and_close_twice(tmp_path: Path) -> None:
    exp = Experiment("toy-tb", space=toy_space(), objectives=["score"], seed=0)  # in memory
    tb = TensorBoardCallback(tmp_path / "tb")
    exp.run(strategy="random", estimator=ToyEstimator(), n_trials=3, callbacks=[tb])
    tb.close()
    tb.close()
    tb(exp, exp.trials[0])  # after close: nothing, no error
    assert [e.step for e in read_events(tmp_path / "tb").Scalars("trial/score")] == [0, 1, 2]


def test_an_experiment_without_run_dir_needs_a_log_dir() -> None:
    exp = Experiment("toy-tb", space=toy_space(), objectives=["score"], seed=0)
    tb = TensorBoardCallback()
    with pytest.warns(TrackingWarning, match="needs log_dir= for an experiment without a run_dir") as record:
        exp.run(strategy="random", estimator=ToyEstimator(), n_trials=3, callbacks=[tb])
    assert len([w for w in record if issubclass(w.category, TrackingWarning)]) == 1
    assert len(exp.trials) == 3 and tb.failed is not None
