"""Several worker processes search one database: no trial lost, none counted or evaluated twice."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from nasforge.experiment import Experiment, TrialState
from nasforge.testing import toy_space

WORKER = textwrap.dedent(
    """
    import sys, time
    from nasforge.experiment import Experiment
    from nasforge.testing import ToyEstimator, toy_space

    class Slow(ToyEstimator):
        def evaluate(self, arch, ctx):
            time.sleep(float(sys.argv[3]))
            return super().evaluate(arch, ctx)

    exp = Experiment("shared", space=toy_space(), objectives=["score"], storage=sys.argv[1], seed=3)
    exp.run("random", Slow(), n_trials=int(sys.argv[2]))
    print(exp.worker_index, flush=True)
    """
)


def _workers(url: str, n: int, count: int, sleep: float) -> list[subprocess.Popen[str]]:
    procs = []
    for _ in range(count):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, url, str(n), str(sleep)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _check(url: str, n: int, spare: int) -> list[object]:
    exp = Experiment("shared", space=toy_space(), objectives=["score"], storage=url, read_only=True)
    finished = [t for t in exp.trials if t.state.is_finished and not t.interrupted]
    assert n <= len(finished) <= n + spare  # at most one extra per other worker (a race at the end)
    assert all(t.state is TrialState.COMPLETE for t in finished)
    keys = Counter(t.architecture.key for t in finished)
    assert max(keys.values()) == 1, "an architecture was evaluated twice"
    assert not [t for t in exp.trials if t.state is TrialState.RUNNING]
    return exp.trials


def _db_count(db: Path, state: str) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return int(con.execute("SELECT count(*) FROM trials WHERE state = ?", (state,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _running_of(db: Path, pid: int) -> bool:
    """Whether the worker process ``pid`` has a RUNNING trial in the database."""
    try:
        with sqlite3.connect(db, timeout=1) as con:
            rows = con.execute(
                "SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING' AND a.key = 'nasforge.worker'"
            ).fetchall()
    except sqlite3.OperationalError:
        return False
    return any(f":{pid}:" in value for (value,) in rows)


def test_three_workers_share_one_database(shared_url: str) -> None:
    url = shared_url
    procs = _workers(url, 24, 3, 0.3)
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert sorted(int(out) for out, _ in outs) == [0, 1, 2]  # each its own index (strategy seed)
    trials = _check(url, 24, spare=2)
    owners = Counter(
        ua.get("nasforge.worker")
        for ua in _user_attrs(url)  # every trial was evaluated by one of the three
    )
    assert len(owners) == 3 and sum(owners.values()) == len(trials)


def test_a_killed_worker_s_trial_is_taken_over_by_the_others(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    procs = _workers(url, 20, 3, 0.5)
    deadline = time.monotonic() + 120
    while not (_db_count(db, "COMPLETE") >= 4 and _running_of(db, procs[0].pid)):
        assert time.monotonic() < deadline, "the first worker never ran a trial"
        time.sleep(0.02)
    os.kill(procs[0].pid, signal.SIGKILL)  # mid-trial: its RUNNING trial is left behind
    procs[0].wait(timeout=30)
    outs = [p.communicate(timeout=300) for p in procs[1:]]
    assert [p.returncode for p in procs[1:]] == [0, 0], [err for _, err in outs]
    trials = _check(url, 20, spare=1)
    interrupted = [t for t in trials if getattr(t, "interrupted", False)]
    assert interrupted, "the killed worker left no running trial behind"
    for t in interrupted:  # each was retried by a survivor
        key = t.architecture.key  # type: ignore[attr-defined]
        assert any(
            u.architecture.key == key and u.state is TrialState.COMPLETE  # type: ignore[attr-defined]
            for u in trials
        )


def _user_attrs(url: str) -> list[dict[str, object]]:
    import optuna

    study = optuna.load_study(study_name="shared", storage=url)
    return [t.user_attrs for t in study.get_trials(deepcopy=False)]


def test_heartbeat_and_liveness(tmp_path: Path) -> None:
    from nasforge.experiment._storage import OptunaStorage
    from nasforge.experiment._workers import Heartbeat, WorkerInfo, register, workers

    storage = OptunaStorage(f"sqlite:///{tmp_path / 'hb.db'}")
    storage.open("x", ["maximize"])
    me = f"{socket.gethostname()}:{os.getpid()}:aaaaaa"
    index = register(storage, me)
    first = workers(storage)[me]
    assert index == 0 and not first.alive()  # an object of this process that is not running holds nothing
    with Heartbeat(storage, me, index, interval=0.05):
        time.sleep(0.4)
        beating = workers(storage)[me]
        assert beating.beat > first.beat and beating.alive()
    assert not workers(storage)[me].alive()  # a finished run holds no trials
    now = time.time()
    elsewhere = WorkerInfo("far:1:b", "far", 1, 1, beat=now - 10)
    assert elsewhere.alive(now) and not WorkerInfo("far:1:b", "far", 1, 1, beat=now - 600).alive(now)
    assert not WorkerInfo("x:1:c", socket.gethostname(), 2**22 + 12345, 0, beat=now).alive(now)  # no such pid
