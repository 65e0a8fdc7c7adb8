"""Storage trouble: a database locked by another writer, a full disk; clear errors, nothing lost."""

from __future__ import annotations

import contextlib
import errno
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import StorageError
from nasforge.experiment import Experiment, TrialState
from nasforge.experiment._storage import OptunaStorage
from nasforge.testing import ToyEstimator, toy_space


def _hold_lock(db: Path, seconds: float, ready: threading.Event) -> None:
    con = sqlite3.connect(db, timeout=10, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    con.execute("COMMIT")
    con.close()


def _experiment(db: Path, lock_timeout: float) -> Experiment:
    # SQLite itself gives up on a lock after 0.1 s here, so the retries are nasforge's
    storage = OptunaStorage(f"sqlite:///{db}?timeout=0.1", lock_timeout=lock_timeout)
    return Experiment("locked", space=toy_space(), objectives=["score"], storage=storage, seed=0)


def test_a_briefly_locked_database_is_waited_for(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    exp = _experiment(db, lock_timeout=20)
    exp.run("random", ToyEstimator(), n_trials=2)
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, 1.0, ready))
    holder.start()
    ready.wait(5)
    exp.run("random", ToyEstimator(), n_trials=4)  # writes while the other writer holds the lock
    holder.join()
    again = _experiment(db, lock_timeout=20)
    assert [t.state for t in again.trials] == [TrialState.COMPLETE] * 4


def test_a_database_locked_for_too_long_fails_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    exp = _experiment(db, lock_timeout=0.3)
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, 2.0, ready))
    holder.start()
    ready.wait(5)
    with pytest.raises(StorageError, match=r"database is locked.*PostgreSQL"):
        exp.run("random", ToyEstimator(), n_trials=1)
    holder.join()


def test_a_full_disk_stops_the_search_with_one_line_and_resume_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run files cannot be written (ENOSPC): exit code 2, one line, and the trials in the
    database survive for --resume once there is space again."""
    monkeypatch.chdir(tmp_path)
    real_write = Path.write_text
    full = {"on": False}

    def write_text(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if full["on"] and self.name.startswith(".leaderboard.csv.") and self.suffix == ".tmp":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", write_text)
    runner = CliRunner()
    args = ["search", "--trials", "3", "--epochs", "1", "--final-epochs", "0", "--run-dir", "run", "-q"]
    full["on"] = True
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "could not write" in result.output and "the disk is full" in result.output
    assert "Traceback" not in result.output
    assert not list(Path("run").glob(".leaderboard.csv*.tmp"))
    first = Experiment.open("run", read_only=True)
    assert [t.state for t in first.trials] == [TrialState.COMPLETE]  # recorded before the write failed

    full["on"] = False
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    final = Experiment.open("run", read_only=True)
    assert [t.state for t in final.trials] == [TrialState.COMPLETE] * 3
    assert final.trials[0].metrics == first.trials[0].metrics


def test_ctrl_c_inside_a_storage_call_is_an_interrupt_not_a_storage_error(tmp_path: Path) -> None:
    # SQLAlchemy may catch Ctrl-C mid-transaction and raise its own error from it; that must stay
    # an interrupt (exit 130, resume) rather than become "could not record ...: KeyboardInterrupt"
    storage = OptunaStorage(f"sqlite:///{tmp_path / 'runs.db'}")

    def interrupted_write() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("database is locked") from exc

    with pytest.raises(KeyboardInterrupt):
        storage._call("record a finished trial", interrupted_write)


class _SwallowedCtrlC(ToyEstimator):
    """Receives Ctrl-C during its first trial, in a spot that ignores the exception (as Python does
    for one raised in a finaliser, e.g. a SQLAlchemy weakref callback)."""

    def evaluate(self, arch, ctx):  # type: ignore[no-untyped-def]
        if self.calls == 0:
            with contextlib.suppress(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        return super().evaluate(arch, ctx)


@pytest.fixture
def python_sigint_handler() -> Iterator[None]:
    """Python's own Ctrl-C handler, even when pytest was started with SIGINT ignored (a background job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("python_sigint_handler")
def test_a_swallowed_ctrl_c_still_stops_the_search(tmp_path: Path) -> None:
    exp = Experiment(
        "ctrl-c", space=toy_space(), objectives=["score"], storage=f"sqlite:///{tmp_path / 'runs.db'}", seed=0
    )
    with pytest.raises(KeyboardInterrupt):
        exp.run("random", _SwallowedCtrlC(), n_trials=5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored
    assert len([t for t in exp.trials if t.state is TrialState.COMPLETE]) == 1  # no trial after it


def test_a_lock_met_while_cleaning_up_after_ctrl_c_is_waited_for_not_taken_as_ctrl_c(tmp_path: Path) -> None:
    # the marks written after a Ctrl-C run inside `except KeyboardInterrupt`; a lock error there
    # has that interrupt as its context, and must still be retried (CI once left a trial RUNNING)
    db = tmp_path / "runs.db"
    storage = OptunaStorage(f"sqlite:///{db}?timeout=0.1", lock_timeout=20)
    storage.open("s", ["maximize"])
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db, 1.0, ready))
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        holder.start()
        ready.wait(5)
        storage.set_meta("after", 1)  # waits for the lock instead of raising
    holder.join()
    assert storage.get_meta("after") == 1


@pytest.mark.usefixtures("python_sigint_handler")
def test_ctrl_c_during_a_storage_write_waits_for_its_end(tmp_path: Path) -> None:
    """A Ctrl-C that comes in the middle of a transaction is raised when it has ended, so no
    connection keeps the database locked and the trial is written whole."""
    from nasforge._interrupts import remember_interrupts

    storage = OptunaStorage(f"sqlite:///{tmp_path / 'runs.db'}")
    storage.open("s", ["maximize"])
    written: list[int] = []

    def write_cut_by_ctrl_c() -> None:
        signal.raise_signal(signal.SIGINT)  # the handler runs here, in the middle of the operation
        storage._storage.set_study_user_attr(storage._study(), "nasforge.x", 1)
        written.append(1)

    with remember_interrupts() as seen, pytest.raises(KeyboardInterrupt):
        storage._call("write", write_cut_by_ctrl_c)
    assert seen == [signal.SIGINT] and written == [1]
    assert storage.get_meta("x") == 1
    storage.set_meta("y", 2)  # nothing is left locked
    assert storage.get_meta("y") == 2
