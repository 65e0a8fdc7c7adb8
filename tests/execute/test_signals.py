"""A real `nasforge search` with one process per trial: Ctrl-C and SIGKILL of the driver lose nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment, TrialState
from nasforge.space import Architecture, IntRange, SearchSpace

N_TRIALS = 6


def _count(db: Path, state: str) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return int(con.execute("SELECT count(*) FROM trials WHERE state = ?", (state,)).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return 0


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _search(run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-X",
        "faulthandler",  # SIGABRT then prints every thread's stack (see _start_and_stop)
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
        "5",
        "--executor",
        "process",
        "--concurrency",
        "2",
        "-q",
        *extra,
    ]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an ignored SIGINT would be inherited and kept


def _start_and_stop(run: Path, sig: int) -> tuple[subprocess.Popen[bytes], set[int]]:
    db = run / "nasforge.db"
    proc = subprocess.Popen(  # with Python's Ctrl-C handler even if pytest runs with SIGINT ignored
        _search(run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_default_sigint
    )
    deadline = time.monotonic() + 300
    children: set[int] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        children |= _children(proc.pid)
        if _count(db, "COMPLETE") >= 2 and _count(db, "RUNNING") >= 1 and _children(proc.pid):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"search ended before it could be stopped: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    children |= _children(proc.pid)
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:  # show where it is stuck rather than only that it is
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        stacks = err.decode(errors="replace")[-8000:]
        raise AssertionError(f"the search did not stop within 120 s of signal {sig}:\n{stacks}") from None
    return proc, children


def _finished(run: Path) -> dict[int, tuple[str, tuple[float, ...] | None]]:
    exp = Experiment.open(run)
    return {
        t.number: (t.architecture.key, t.values)
        for t in exp.trials
        if t.state.is_finished and not t.interrupted
    }


def _resume_and_check(run: Path, before: dict[int, tuple[str, tuple[float, ...] | None]]) -> None:
    resumed = subprocess.run(_search(run, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _finished(run)
    assert len(after) == N_TRIALS
    for number, record in before.items():  # nothing finished before the stop was lost or changed
        assert after[number] == record
    keys = [key for key, _ in after.values()]
    assert len(set(keys)) == len(keys)  # and nothing was evaluated twice


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find trial processes")
def test_ctrl_c_stops_running_trials_and_keeps_storage_consistent(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc, children = _start_and_stop(run, signal.SIGINT)
    assert proc.returncode == 130
    assert b"interrupted; continue with the same command and --resume" in proc.stderr.read()  # type: ignore[union-attr]
    assert children and not any(_alive(c) for c in children)  # the trial processes were stopped
    assert _count(run / "nasforge.db", "RUNNING") == 0  # every running trial was marked
    interrupted = [t for t in Experiment.open(run).trials if t.interrupted]
    assert interrupted and all("stopped by the user" in (t.error or "") for t in interrupted)
    assert all(t.state is TrialState.FAIL for t in interrupted)
    _resume_and_check(run, _finished(run))


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; trial processes die with the driver on Linux"
)
def test_sigkill_of_the_driver_takes_its_trial_processes_and_loses_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc, children = _start_and_stop(run, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children and not any(_alive(c) for c in children)  # no orphan keeps training
    before = _finished(run)  # opening marks the trials left RUNNING as interrupted
    assert len(before) >= 2
    _resume_and_check(run, before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find trial processes")
def test_sigterm_stops_like_ctrl_c_and_says_it_was_sigterm(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc, children = _start_and_stop(run, signal.SIGTERM)
    assert proc.returncode == 143  # 128 + SIGTERM, as a shell reports it
    assert b"stopped by SIGTERM; continue with the same command and --resume" in proc.stderr.read()  # type: ignore[union-attr]
    assert children and not any(_alive(c) for c in children)
    interrupted = [t for t in Experiment.open(run).trials if t.interrupted]
    assert interrupted and all(t.error == "interrupted: stopped by SIGTERM" for t in interrupted)
    _resume_and_check(run, _finished(run))


class _TermDuringFirstTrial(Estimator):
    """Receives SIGTERM in the middle of its first trial (in this process)."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, float]:
        self.calls += 1
        if self.calls == 1:
            signal.raise_signal(signal.SIGTERM)
        return {"score": float(arch.params["a"])}


def test_an_in_process_trial_cut_by_sigterm_records_sigterm(tmp_path: Path) -> None:
    from nasforge.cli import _terminate_as_interrupt

    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt(seen))  # as `nasforge search` does
    try:
        exp = Experiment("term", space=SearchSpace({"a": IntRange(0, 9)}), objectives=["score"], seed=0)
        with pytest.raises(KeyboardInterrupt):
            exp.run("random", _TermDuringFirstTrial(), n_trials=3)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]
    [trial] = exp.trials
    assert trial.interrupted and trial.error == "interrupted: stopped by SIGTERM"
