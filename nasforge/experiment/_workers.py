"""Several search processes (workers) on one database: who is alive, who owns a running trial.

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
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasforge.errors import StorageError

if TYPE_CHECKING:
    from nasforge.experiment._storage import Storage

__all__ = ["Heartbeat", "WorkerInfo", "new_worker_id", "register", "searching", "still_there", "workers"]

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
