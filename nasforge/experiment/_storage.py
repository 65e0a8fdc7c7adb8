"""Where trials live: in memory, or in any SQL database through Optuna's RDB storage.

Concurrency contract: one driver process writes an experiment at a time; readers (``nasforge show``,
``optuna-dashboard``) may read concurrently. Every finished trial is committed before the strategy
hears of it, so a killed driver loses no finished trial.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from nasforge._interrupts import held
from nasforge.errors import StorageError
from nasforge.space import Architecture, Choice, IntRange, SearchSpace
from nasforge.trial import SCREENED, Trial, TrialState

# Optuna and SQLAlchemy are imported when a database storage is opened, so that `import nasforge` stays light.

__all__ = ["InMemoryStorage", "OptunaStorage", "Storage", "StoredTrial", "open_storage"]

#: the records a storage writes and reads are :class:`Trial` objects (the name of earlier versions)
StoredTrial = Trial


class Storage(ABC):
    """Trial storage for one experiment. :meth:`open` is called first, once (:meth:`names` may
    come before it).

    The storage writes and reads :class:`Trial` records; it keeps an architecture as its
    parameters and rebuilds it in the space :meth:`load_trials` is given.

    Attributes:
        persistent: whether the trials outlive the process (then the strategy state is saved
            after every trial, so a killed run resumes exactly).
    """

    persistent: bool = True

    @abstractmethod
    def open(self, name: str, directions: Sequence[str] | None = None) -> None:
        """Create the experiment ``name`` or attach to an existing one with the same directions;
        with ``directions`` None, attach to an existing one whatever its directions (a
        :class:`StorageError` if there is none)."""

    @abstractmethod
    def names(self) -> list[str]:
        """The names of the experiments this storage holds."""

    @abstractmethod
    def create_trial(self, arch: Architecture, started: float, worker: str | None = None) -> int:
        """Record a RUNNING trial of ``arch`` evaluated by ``worker``; return its number."""

    def record_trial(self, trial: Trial) -> int:
        """Record a trial that is finished already (a proposal screened out before evaluation) and
        return its number (``trial.number`` is ignored). This default creates it, then finishes
        it; a database does it in one transaction."""
        number = self.create_trial(trial.architecture, trial.started or time.time(), worker=trial.worker)
        self.finish_trial(replace(trial, number=number))
        return number

    @abstractmethod
    def report(self, number: int, step: int, value: float) -> None:
        """Record an intermediate value of a running trial."""

    @abstractmethod
    def finish_trial(self, trial: Trial) -> None:
        """Write the final state, metrics, values and flags of trial ``trial.number``; the
        intermediate values :meth:`report` recorded stay (the trial's own are added to them)."""

    @abstractmethod
    def load_trials(self, space: SearchSpace) -> list[Trial]:
        """All trials, by number, their architectures made in ``space``."""

    @abstractmethod
    def get_meta(self, key: str) -> Any:
        """A JSON value stored with :meth:`set_meta`, or None."""

    @abstractmethod
    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under ``key``."""

    @abstractmethod
    def meta_items(self, prefix: str) -> dict[str, Any]:
        """Every stored value whose key starts with ``prefix``, by key."""

    def claim(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` unless a value is there already; return the stored value.

        Of several processes claiming one key, exactly one gets its own value back (workers on one
        database use it to pick the one that does the final training). This default is atomic
        within one process only; storages shared between processes override it.
        """
        current = self.get_meta(key)
        if current is None:
            self.set_meta(key, value)
            return self.get_meta(key)
        return current

    def describe(self) -> str:
        """Where the trials are, for messages."""
        return type(self).__name__


class InMemoryStorage(Storage):
    """Trials in a Python list: fast, gone with the process (tests, tabular benchmarks)."""

    persistent = False

    def __init__(self) -> None:
        self._trials: list[Trial] = []
        self._meta: dict[str, Any] = {}
        self._name: str | None = None

    def open(self, name: str, directions: Sequence[str] | None = None) -> None:
        if directions is None and self._name != name:
            raise StorageError(f"there is no experiment '{name}' in memory")
        self._name = name
        if directions is not None:
            self._meta.setdefault("directions", list(directions))

    def names(self) -> list[str]:
        return [] if self._name is None else [self._name]

    def create_trial(self, arch: Architecture, started: float, worker: str | None = None) -> int:
        number = len(self._trials)
        self._trials.append(Trial(number, arch, TrialState.RUNNING, started=started, worker=worker))
        return number

    def report(self, number: int, step: int, value: float) -> None:
        rec = self._trials[number]
        self._trials[number] = replace(rec, intermediate={**rec.intermediate, step: value})

    def finish_trial(self, trial: Trial) -> None:
        reported = self._trials[trial.number].intermediate
        self._trials[trial.number] = replace(trial, intermediate={**reported, **trial.intermediate})

    def load_trials(self, space: SearchSpace) -> list[Trial]:
        for i, t in enumerate(self._trials):
            if t.architecture.space is not space:  # the experiment's space was bound since
                self._trials[i] = replace(
                    t, architecture=space.make(t.architecture.params, check_constraints=False)
                )
        return list(self._trials)

    def get_meta(self, key: str) -> Any:
        return copy.deepcopy(self._meta.get(key))

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = json.loads(json.dumps(value))  # same JSON discipline as a database

    def meta_items(self, prefix: str) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self._meta.items() if k.startswith(prefix)}


_PREFIX = "nasforge."
_NON_FINITE = ("nan", "inf", "-inf")  # how non-finite metric values are stored (JSON has none)
T = TypeVar("T")


def _timestamp(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class OptunaStorage(Storage):
    """Trials in an Optuna RDB storage (``sqlite:///runs/x/nasforge.db``, any SQLAlchemy URL).

    The architecture parameters are stored as Optuna params with their distributions and the
    objective values as trial values, so ``optuna-dashboard <url>`` shows the search; metrics, errors
    and the strategy state are user attributes prefixed ``nasforge.``.

    Args:
        url: SQLAlchemy database URL.
        lock_timeout: seconds an operation is retried while another process holds a lock on the
            database (SQLite allows one writer at a time), before it fails with a clear error.
    """

    def __init__(self, url: str, *, lock_timeout: float = 30.0) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self._storage: Any = None
        self._study_id: int | None = None
        self._trial_ids: dict[int, int] = {}
        self._archs: dict[int, Architecture] = {}  # a trial's parameters never change: made once

    def _connect(self) -> None:
        """Create the Optuna storage object (the tables, for a new database)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for attempt in range(5):  # workers starting together race to create the tables
            try:
                with self._errors("open the database"):
                    self._storage = optuna.storages.RDBStorage(self.url)
                return
            except StorageError as exc:
                racing = any(
                    text in str(exc) for text in ("already exists", "UNIQUE constraint", "duplicate key")
                )
                if attempt == 4 or not (racing or _is_lock(exc.__cause__)):
                    raise
                time.sleep(0.2 * (attempt + 1))

    def describe(self) -> str:
        return self.url

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn a database error into one :class:`StorageError` line; hold Ctrl-C until the
        operation (one transaction) ends, so that no connection is left holding a lock."""
        ambient = sys.exc_info()[1]  # an exception being handled around this call (a Ctrl-C's cleanup)
        with held():
            try:
                yield
            except StorageError:
                raise
            except Exception as exc:  # SQLAlchemy / Optuna errors: say where and what
                if any(isinstance(e, KeyboardInterrupt) for e in _chain(exc, stop=ambient)):
                    raise KeyboardInterrupt from exc  # Ctrl-C in the middle of a write, not a storage fault
                raise StorageError(f"storage {self.url}: could not {what}: {_advice(exc)}") from exc

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one storage operation; retry it while the database is locked by another writer.

        Every operation is one transaction that is rolled back when it fails, so running it again
        is safe. After ``lock_timeout`` seconds of locks the error is raised, saying what to do.
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                with self._errors(what):
                    return fn()
            except StorageError as exc:
                if not _is_lock(exc.__cause__) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def names(self) -> list[str]:
        if self._storage is None:
            self._connect()
        with self._errors("list the experiments"):
            return [s.study_name for s in self._storage.get_all_studies()]

    def open(self, name: str, directions: Sequence[str] | None = None) -> None:
        import optuna

        if self._storage is None:
            self._connect()
        with self._errors("open the database"):
            try:
                self._study_id = self._storage.get_study_id_from_name(name)
            except KeyError:
                if directions is None:
                    raise StorageError(f"storage {self.url}: there is no experiment '{name}'") from None
                dirs = [optuna.study.StudyDirection[d.upper()] for d in directions]
                try:
                    self._study_id = self._storage.create_new_study(dirs, study_name=name)
                except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
                    self._study_id = self._storage.get_study_id_from_name(name)
            stored = [d.name.lower() for d in self._storage.get_study_directions(self._study_id)]
        if directions is not None and stored != [d.lower() for d in directions]:
            raise StorageError(
                f"experiment '{name}' in {self.url} optimises {stored}, not {list(directions)}; "
                "use another experiment name or the original objectives"
            )
        with self._errors("read trials"):
            for ft in self._storage.get_all_trials(self._study_id, deepcopy=False):
                self._trial_ids[ft.number] = ft._trial_id

    def _study(self) -> int:
        if self._study_id is None:
            raise StorageError("storage used before open()")
        return self._study_id

    def create_trial(self, arch: Architecture, started: float, worker: str | None = None) -> int:
        return self._create(arch, started, worker, None)

    def record_trial(self, trial: Trial) -> int:
        return self._create(trial.architecture, trial.started or time.time(), trial.worker, trial)

    def _create(self, arch: Architecture, started: float, worker: str | None, record: Trial | None) -> int:
        """A new trial, RUNNING, or finished as ``record`` says (one transaction either way)."""
        import optuna
        from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

        dims = arch.space.dimensions()
        dists: dict[str, BaseDistribution] = {}
        for name in arch.params:
            dim = dims[name]
            if isinstance(dim, IntRange):
                dists[name] = IntDistribution(dim.low, dim.high, step=dim.step)
            else:
                assert isinstance(dim, Choice)
                dists[name] = CategoricalDistribution(dim.values())
        attrs: dict[str, Any] = {_PREFIX + "key": arch.key, _PREFIX + "worker": worker}
        state, complete, values = optuna.trial.TrialState.RUNNING, None, None
        if record is not None:
            attrs.update({_PREFIX + k: v for k, v in _finished_attrs(record).items()})
            state = optuna.trial.TrialState[record.state.value]
            complete = dt.datetime.fromtimestamp(record.finished or started)
            values = list(record.values) if record.values else None
        template = optuna.trial.FrozenTrial(
            number=-1,
            state=state,
            value=None,
            values=values,
            datetime_start=dt.datetime.fromtimestamp(started),
            datetime_complete=complete,
            params=dict(arch.params),
            distributions=dists,
            user_attrs=attrs,
            system_attrs={},
            intermediate_values={},
            trial_id=-1,
        )
        trial_id = self._call(
            "create a trial", lambda: self._storage.create_new_trial(self._study(), template_trial=template)
        )
        number = int(self._call("create a trial", lambda: self._storage.get_trial_number_from_id(trial_id)))
        self._trial_ids[number] = trial_id
        self._archs[number] = arch
        return number

    def report(self, number: int, step: int, value: float) -> None:
        self._call(
            "record an intermediate value",
            lambda: self._storage.set_trial_intermediate_value(self._trial_ids[number], step, float(value)),
        )

    def finish_trial(self, trial: Trial) -> None:
        import optuna

        trial_id = self._trial_ids[trial.number]
        for k, v in _finished_attrs(trial).items():
            self._call(
                "record a finished trial",
                lambda k=k, v=v: self._storage.set_trial_user_attr(trial_id, _PREFIX + k, v),  # type: ignore[misc]
            )
        state = optuna.trial.TrialState[trial.state.value]
        values = list(trial.values) if trial.values else None
        self._call(
            "record a finished trial", lambda: self._storage.set_trial_state_values(trial_id, state, values)
        )

    def load_trials(self, space: SearchSpace) -> list[Trial]:
        frozen = self._call(
            "read trials", lambda: self._storage.get_all_trials(self._study(), deepcopy=False)
        )
        out = []
        for ft in frozen:
            self._trial_ids[ft.number] = ft._trial_id
            ua = ft.user_attrs
            metrics = {
                k: (float(v) if v in _NON_FINITE else v)  # other strings (device names) stay
                for k, v in (ua.get(_PREFIX + "metrics") or {}).items()
            }
            state = TrialState(ft.state.name)
            error = ua.get(_PREFIX + "error")
            screened = ua.get(_PREFIX + "screened")
            if screened is None:  # written before the flag was: the error's prefix tells
                screened = state is TrialState.FAIL and (error or "").startswith(SCREENED)
            arch = self._archs.get(ft.number)
            if arch is None or arch.space is not space:
                arch = self._archs[ft.number] = space.make(dict(ft.params), check_constraints=False)
            out.append(
                Trial(
                    number=ft.number,
                    architecture=arch,
                    state=state,
                    metrics=metrics,
                    values=tuple(ft.values) if ft.values is not None else None,
                    feasible=bool(ua.get(_PREFIX + "feasible", True)),
                    error=error,
                    started=_timestamp(ft.datetime_start),
                    finished=ua.get(_PREFIX + "finished") or _timestamp(ft.datetime_complete),
                    intermediate=dict(ft.intermediate_values),
                    interrupted=bool(ua.get(_PREFIX + "interrupted", False)),
                    screened=bool(screened),
                    worker=ua.get(_PREFIX + "worker"),
                )
            )
        return sorted(out, key=lambda t: t.number)

    def get_meta(self, key: str) -> Any:
        attrs = self._call("read experiment data", lambda: self._storage.get_study_user_attrs(self._study()))
        return attrs.get(_PREFIX + key)

    def set_meta(self, key: str, value: Any) -> None:
        self._call(
            "write experiment data",
            lambda: self._storage.set_study_user_attr(self._study(), _PREFIX + key, value),
        )

    def meta_items(self, prefix: str) -> dict[str, Any]:
        attrs = self._call("read experiment data", lambda: self._storage.get_study_user_attrs(self._study()))
        return {k[len(_PREFIX) :]: v for k, v in attrs.items() if k.startswith(_PREFIX + prefix)}

    def claim(self, key: str, value: Any) -> Any:
        """Insert-only write of a study user attribute: the table's unique (study, key) constraint
        lets exactly one of several racing inserts commit, on SQLite and on a server database
        alike (Optuna's own ``set_study_user_attr`` updates an existing value instead)."""
        from optuna.storages._rdb import models
        from sqlalchemy.exc import IntegrityError

        def insert() -> None:
            session = self._storage.scoped_session()
            try:
                session.add(
                    models.StudyUserAttributeModel(
                        study_id=self._study(), key=_PREFIX + key, value_json=json.dumps(value)
                    )
                )
                session.commit()
            except IntegrityError:  # somebody else's value is there: theirs stands
                session.rollback()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

        self._call(f"claim {key}", insert)
        return self.get_meta(key)


def _finished_attrs(record: Trial) -> dict[str, Any]:
    """The user attributes (without prefix) that record a finished trial; non-finite metrics as text."""
    metrics = {
        k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.metrics.items()
    }
    attrs: dict[str, Any] = {"metrics": metrics, "feasible": record.feasible, "finished": record.finished}
    if record.error is not None:
        attrs["error"] = record.error
    if record.interrupted:
        attrs["interrupted"] = True
    if record.state is TrialState.FAIL:  # absent: a run written before the flag (see load_trials)
        attrs["screened"] = record.screened
    return attrs


def _chain(exc: BaseException | None, stop: BaseException | None = None) -> list[BaseException]:
    """``exc`` and the errors it was raised from (Optuna wraps SQLAlchemy's, which wraps the
    driver's), up to ``stop`` (an exception that was already being handled when ``exc`` came)."""
    out: list[BaseException] = []
    while exc is not None and exc is not stop and exc not in out and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _is_lock(exc: BaseException | None) -> bool:
    """A transient "database is locked / busy" error that a retry may get past."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock" in text


def _advice(exc: BaseException) -> str:
    """The deepest error's first line (the database's own words), with what to do for common ones."""
    chain = _chain(exc)
    text = str(chain[-1]).strip()
    first = text.splitlines()[0] if text else type(chain[-1]).__name__
    low = " ".join(str(e) for e in chain).lower()
    if "disk is full" in low or "no space left" in low:
        return f"{first} (the disk is full: free space, then continue with --resume)"
    if "database is locked" in low:
        return (
            f"{first} (another process kept the database locked; "
            "with many writers use a server database such as PostgreSQL)"
        )
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return f"{first} (the database file or its folder is not writable)"
    return first


def open_storage(storage: str | Storage | None) -> Storage:
    """``None``/``":memory:"`` → in memory; a URL → :class:`OptunaStorage`; a Storage passes through."""
    if storage is None or storage == ":memory:":
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if isinstance(storage, str) and "://" in storage:
        return OptunaStorage(storage)
    raise StorageError(
        "storage must be None, ':memory:', a database URL such as 'sqlite:///runs/x.db', "
        f"or a Storage; got {storage!r}"
    )
