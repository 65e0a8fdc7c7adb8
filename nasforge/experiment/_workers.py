"""Several search processes (workers) on one database: who is alive, who owns a running trial,
and (:class:`Coordinator`) how an experiment takes in what the others do.

Each writing experiment registers itself as a worker in the storage (``worker.<id>``: host, pid,
index, last heartbeat, active) when it is created, keeps its heartbeat fresh from a background
thread while it runs, and marks itself inactive when a run ends. Another Experiment object of
the same process counts only while its run is going on, so a notebook cell run again resumes the
search rather than joining it as a second worker. A RUNNING trial
is taken as interrupted unless its worker is active and alive: a process of this host that still
exists, or a worker on another host whose heartbeat is younger than the grace period.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge.errors import StorageError
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment
    from nasforge.experiment._storage import Storage

__all__ = [
    "Coordinator",
    "Heartbeat",
    "WorkerInfo",
    "new_worker_id",
    "register",
    "searching",
    "still_there",
    "workers",
]

#: seconds between heartbeats of a running worker
BEAT = 10.0
#: seconds without a heartbeat after which a worker on another host is taken as gone
GRACE = 120.0
_PREFIX = "worker."
#: workers of this process whose search is running now (their heartbeat is on)
_RUNNING_HERE: set[str] = set()


def new_worker_id() -> str:
    """``host:pid:random``: unique among the workers of a database."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker as the storage holds it."""

    id: str
    host: str
    pid: int
    index: int
    beat: float
    active: bool = True

    def alive(self, now: float | None = None, grace: float = GRACE) -> bool:
        """Whether the worker may still be running trials."""
        if not self.active:
            return False
        if self.host == socket.gethostname():
            if self.pid == os.getpid():  # another Experiment object of this process (a notebook)
                return self.id in _RUNNING_HERE
            return _pid_alive(self.pid)
        return (now or time.time()) - self.beat < grace


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (killed, not yet reaped by its parent) is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def workers(storage: Storage) -> dict[str, WorkerInfo]:
    """Every worker registered in ``storage``, by id."""
    out = {}
    for key, value in storage.meta_items(_PREFIX).items():
        try:
            out[key[len(_PREFIX) :]] = WorkerInfo(
                id=key[len(_PREFIX) :],
                host=str(value["host"]),
                pid=int(value["pid"]),
                index=int(value["index"]),
                beat=float(value["beat"]),
                active=bool(value.get("active", True)),
            )
        except (KeyError, TypeError, ValueError):
            continue  # a malformed entry is nobody
    return out


def searching(storage: Storage, worker_id: str) -> list[WorkerInfo]:
    """The other workers of ``storage`` whose search is still going on (active and alive)."""
    now = time.time()
    return [w for w in workers(storage).values() if w.id != worker_id and w.alive(now)]


def still_there(storage: Storage, worker_id: str) -> bool:
    """Whether the process of a worker still exists, whether or not its search loop has ended: a
    process of this host that is running (in this process: one whose heartbeat is on), or a
    worker on another host with a recent heartbeat."""
    info = workers(storage).get(worker_id)
    return info is not None and dataclasses.replace(info, active=True).alive()


def register(storage: Storage, worker_id: str) -> int:
    """Register this process as a worker; return its index: the smallest one no live worker holds.

    Index 0 is the first worker (and a resumed single search), so it keeps the experiment's
    strategy seed and saved state; other workers get their own. Two workers that pick an index at
    the same moment settle it: each looks again right after its entry is written, and whoever sees
    another live worker with the same index moves on after a short random pause (of two entries,
    the one written later always sees the other, so a clash never goes unseen).
    """
    index = 0
    for _ in range(10):
        now = time.time()
        taken = {w.index for w in workers(storage).values() if w.id != worker_id and w.alive(now)}
        index = next(i for i in range(len(taken) + 1) if i not in taken)
        _write(storage, worker_id, index)
        clash = [w for w in workers(storage).values() if w.id != worker_id and w.index == index and w.alive()]
        if not clash:
            return index
        time.sleep(secrets.randbelow(50) / 1000)
    return index


def _write(storage: Storage, worker_id: str, index: int, *, active: bool = True) -> None:
    storage.set_meta(
        _PREFIX + worker_id,
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "index": index,
            "beat": time.time(),
            "active": active,
        },
    )


class Heartbeat:
    """Refreshes a worker's heartbeat from a daemon thread while a search runs."""

    def __init__(self, storage: Storage, worker_id: str, index: int, interval: float = BEAT) -> None:
        self.storage = storage
        self.worker_id = worker_id
        self.index = index
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        _write(self.storage, self.worker_id, self.index)
        _RUNNING_HERE.add(self.worker_id)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nasforge-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        _RUNNING_HERE.discard(self.worker_id)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(StorageError):
            _write(self.storage, self.worker_id, self.index, active=False)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(StorageError):  # a missed beat is retried at the next one
                _write(self.storage, self.worker_id, self.index)


class Coordinator:
    """An experiment's part in a search that other workers share: it registers the experiment as
    a worker, keeps its heartbeat while it runs, and takes in what the others did.

    Trials other workers run join the experiment's record (their architectures are not proposed
    again), trials they finish are told to its strategy and scheduler, and RUNNING trials of
    workers that are gone are marked interrupted and queued for a retry. While an experiment is
    the only worker of its database, looking costs nothing but one read every 2 s.

    Args:
        exp: the experiment.
        join: register as a worker in the storage (a writing experiment on a persistent
            storage); otherwise the experiment is worker 0 and registers nothing.
    """

    def __init__(self, exp: Experiment, *, join: bool) -> None:
        self.exp = exp
        self.worker_id = new_worker_id()
        self.index = register(exp.storage, self.worker_id) if join else 0
        self._shared_checked = -math.inf  # monotonic time of the last look for other workers
        self._shared = False
        self._refreshed = -math.inf

    def heartbeat(self) -> contextlib.AbstractContextManager[Any]:
        """The context of a search loop: the worker's heartbeat on a persistent storage."""
        storage = self.exp.storage
        if not storage.persistent:
            return contextlib.nullcontext()
        return Heartbeat(storage, self.worker_id, self.index)

    def load(self) -> None:
        """Take in the stored trials when the experiment opens: a RUNNING trial of another live
        worker is that worker's; one of a process that is gone is marked interrupted (unless the
        experiment is read-only) and its architecture queued for a retry."""
        exp, ledger = self.exp, self.exp._ledger
        trials = exp.storage.load_trials(exp.space)
        live = self.live_others()
        for t in trials:
            ledger.put(t)
        for t in trials:
            if t.state is not TrialState.RUNNING:
                continue
            if t.worker is not None and t.worker in live:  # another worker is evaluating it
                ledger.others.add(t.number)
            elif not exp.read_only:  # its process is gone
                ledger.finish(
                    t.number,
                    TrialState.FAIL,
                    error="interrupted: the search process stopped while this trial was running",
                    interrupted=True,
                )
        queued: set[str] = set()
        for t in exp.trials:
            key = t.architecture.key
            if t.interrupted and key not in ledger.keys and key not in queued:
                ledger.retry.append(t.architecture)
                queued.add(key)

    def live_others(self) -> set[str]:
        """Ids of the other workers of this database that may still be running trials."""
        if not self.exp.storage.persistent:
            return set()
        now = time.time()
        return {w.id for w in workers(self.exp.storage).values() if w.id != self.worker_id and w.alive(now)}

    def is_shared(self) -> bool:
        """Whether other live workers search this database too (looked up at most every 2 s)."""
        if not self.exp.storage.persistent:
            return False
        now = time.monotonic()
        if now - self._shared_checked > 2.0:
            self._shared = bool(self.live_others()) or bool(self.exp._ledger.others)
            self._shared_checked = now
        return self._shared

    def refresh(self, *, max_age: float = 0.2, force: bool = False) -> None:
        """Take in what other workers did since the last look (see :meth:`Experiment.refresh`)."""
        if not force and (not self.is_shared() or time.monotonic() - self._refreshed < max_age):
            return
        self._refreshed = time.monotonic()
        exp, ledger = self.exp, self.exp._ledger
        live = self.live_others()
        for trial in exp.storage.load_trials(exp.space):
            n = trial.number
            known = ledger.get(n)
            if n in ledger.running or (
                known is not None and known.state is trial.state and known.interrupted == trial.interrupted
            ):
                if trial.state is TrialState.RUNNING and n not in ledger.running and trial.worker not in live:
                    self.take_over(n)
                continue
            ledger.put(trial)
            if trial.state is TrialState.RUNNING:
                ledger.others.add(n)
                if trial.worker not in live:
                    self.take_over(n)
                continue
            if trial.interrupted:
                if exp.dedup and trial.architecture.key not in ledger.keys:
                    ledger.retry.append(trial.architecture)
                continue
            exp._components.heard(trial)

    def take_over(self, number: int) -> None:
        """A RUNNING trial of a worker that is gone: mark it interrupted and queue it for a retry."""
        trial = self.exp._ledger[number]
        try:
            self.exp._ledger.finish(
                number,
                TrialState.FAIL,
                error="interrupted: the worker evaluating this trial stopped",
                interrupted=True,
            )
        except StorageError:  # another worker marked it first
            return
        if trial.architecture.key not in self.exp._ledger.keys:
            self.exp._ledger.retry.append(trial.architecture)

    def yields(self, trial: Trial) -> bool:
        """Whether a trial just started must give way to a lower-numbered trial of the same
        architecture that another worker created meanwhile; if so it is finished as not evaluated.

        Workers check after creating a trial: of two that picked the same architecture at the same
        moment, the later trial yields, so no architecture is evaluated twice.
        """
        if not self.is_shared():
            return False
        params = dict(trial.params)
        first = next(
            (
                t.number
                for t in self.exp.storage.load_trials(self.exp.space)
                if t.number < trial.number and not t.interrupted and dict(t.params) == params
            ),
            None,
        )
        if first is None:
            return False
        self.exp._ledger.finish(
            trial.number,
            TrialState.FAIL,
            error=f"not evaluated: trial {first} of another worker evaluates this architecture",
            interrupted=True,
        )
        self.exp._ledger.keys[trial.architecture.key] += 1  # it is taken, by the other trial
        return True
