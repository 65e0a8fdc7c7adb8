"""A real search process killed with SIGKILL resumes with nothing lost or repeated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from nasforge.experiment import Experiment, TrialState

N_TRIALS = 6


def _count(db: Path, state: str) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return int(con.execute("SELECT count(*) FROM trials WHERE state = ?", (state,)).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return 0


def _search(run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "nasforge.cli",
        "search",
        "--run-dir",
        str(run),
        "--trials",
        str(N_TRIALS),
        "--epochs",
        "4",
        "--final-epochs",
        "0",
        "--seed",
        "11",
        "-q",
        *extra,
    ]


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    db = run / "nasforge.db"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(_search(run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _count(db, "COMPLETE") < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"search ended before it could be killed: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    killed = Experiment.open(run)  # opening marks the trial left RUNNING as interrupted
    done_before = {
        t.number: (t.architecture.key, t.values, dict(t.metrics))
        for t in killed.trials
        if t.state.is_finished and not t.interrupted
    }
    interrupted = [t for t in killed.trials if t.interrupted]
    assert len(done_before) >= 3
    del killed

    resumed = subprocess.run(_search(run, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr

    final = Experiment.open(run)
    finished = [t for t in final.trials if t.state.is_finished and not t.interrupted]
    assert len(finished) == N_TRIALS
    # nothing finished before the kill was lost or changed
    for number, record in done_before.items():
        t = final.trials[number]
        assert (t.architecture.key, t.values, dict(t.metrics)) == record
    # nothing was evaluated twice
    keys = [t.architecture.key for t in finished]
    assert len(keys) == len(set(keys))
    # the trial that was running when the process died was evaluated again after the resume
    for lost in interrupted:
        assert lost.state is TrialState.FAIL
        assert any(t.architecture.key == lost.architecture.key for t in finished if t.number > lost.number)
