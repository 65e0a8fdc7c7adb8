"""Workers on one database: exactly one trains the best, and the run files agree with the database."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nasforge.config import SearchConfig, parse_config
from nasforge.experiment import Experiment, OptunaStorage
from nasforge.experiment._search import run_search
from nasforge.space import space_from_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = {
    "name": "shared",
    "space": {"depth": [1, 2], "layer": {"filters": [8]}},
    "estimator": {"epochs": 1},
    "strategy": "random",
    "trials": 2,
    "final": {"epochs": 1},
}


def _config(url: str) -> SearchConfig:
    return parse_config({**CONFIG, "storage": url})


def _leaderboard(run: Path) -> dict[int, str]:
    with open(run / "leaderboard.csv") as f:
        return {int(row["number"]): row["state"] for row in csv.DictReader(f)}


def _stored(url: str) -> dict[int, str]:
    storage = OptunaStorage(url)
    storage.open("shared", ["maximize"])
    return {
        t.number: t.state.value for t in storage.load_trials(space_from_config(storage.get_meta("space")))
    }


def test_a_worker_started_after_the_final_training_does_not_repeat_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = run_search(_config(url), base=tmp_path)
    assert first.final is not None and first.final_note is None
    run = first.run_dir
    model = (run / "model.nasforge").stat().st_mtime_ns
    # a stale snapshot (as a worker that wrote while another's trial ran would leave)
    (run / "leaderboard.csv").write_text("rank,number,state\n,0,RUNNING\n")

    second = run_search(_config(url), base=tmp_path)
    assert second.final is None and second.run_dir == run
    assert second.final_note is not None and "was done by worker" in second.final_note
    assert first.experiment.worker_id in second.final_note
    assert (run / "model.nasforge").stat().st_mtime_ns == model  # not trained again
    assert _leaderboard(run) == _stored(url) == {0: "COMPLETE", 1: "COMPLETE"}  # rewritten from storage
    final = json.loads((run / "final.json").read_text())
    assert final["trial"] == second.experiment.best().number  # type: ignore[union-attr]


def test_a_claim_left_by_a_dead_worker_is_taken_over(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    cfg = parse_config({**CONFIG, "storage": url, "final": {"epochs": 0}})
    searched = run_search(cfg, base=tmp_path)  # the trials, no final training
    assert searched.final is None and searched.final_note is None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process of this host that has ended
    storage = searched.experiment.storage
    storage.set_meta(
        "worker.gone", {"host": socket.gethostname(), "pid": pid, "index": 5, "beat": 0.0, "active": False}
    )
    storage.set_meta("final.2.1", {"worker": "gone", "run_dir": "elsewhere"})  # killed mid-training

    again = run_search(_config(url), base=tmp_path)
    assert again.final is not None and (again.run_dir / "model.nasforge").is_file()
    assert storage.get_meta("final.2.2")["worker"] == again.experiment.worker_id
    assert storage.get_meta("final.2.done")["worker"] == again.experiment.worker_id


def test_a_worker_that_ends_while_another_still_runs_leaves_the_final_to_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        storage = OptunaStorage(url)
        storage.open("shared", ["maximize"])
        storage.set_meta(  # a live worker of this host, still in its search loop
            "worker.busy",
            {"host": socket.gethostname(), "pid": other.pid, "index": 1, "beat": time.time(), "active": True},
        )
        result = run_search(_config(url), base=tmp_path)
    finally:
        other.kill()
        other.wait()
    assert result.final is None and not (result.run_dir / "model.nasforge").exists()
    assert result.final_note is not None and "left to the worker(s) still running" in result.final_note
    assert "busy" in result.final_note
    assert storage.meta_items("final.") == {}  # nothing claimed: the other one will


CLAIM = textwrap.dedent(
    """
    import os, sys, time
    from nasforge.experiment import OptunaStorage
    storage = OptunaStorage(sys.argv[1])
    storage.open("race", ["maximize"])
    while time.time() < float(sys.argv[2]):  # start together
        time.sleep(0.001)
    print(storage.claim("final.0.1", {"worker": os.getpid()})["worker"] == os.getpid())
    """
)


def test_exactly_one_of_several_processes_wins_a_claim(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    OptunaStorage(url).open("race", ["maximize"])  # the tables exist before the race
    start = str(time.time() + 4.0)
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIM, url, start], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    wins = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert sorted(wins) == ["False", "False", "False", "True"], wins
    storage = OptunaStorage(url)
    storage.open("race", ["maximize"])
    assert storage.claim("final.0.1", {"worker": os.getpid()})["worker"] != os.getpid()


@pytest.mark.slow
def test_two_worker_processes_train_the_best_once(tmp_path: Path) -> None:
    """Two `nasforge search --storage` processes in one directory (~40 s on 2 busy cores)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({**CONFIG, "trials": 4}))
    env = {**os.environ, "NASFORGE_THREADS": "1", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "nasforge.cli", "search", str(cfg), "--storage", url, "-q"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("final training: 1 epochs" in o for o in outs) == 1, outs
    assert sum("the final training is" in o or "the final training of" in o for o in outs) == 1, outs
    run = tmp_path / "runs" / "shared"
    assert _leaderboard(run) == _stored(url) and set(_stored(url).values()) == {"COMPLETE"}
    best = Experiment.open(run, read_only=True).best()
    assert best is not None and json.loads((run / "final.json").read_text())["trial"] == best.number
