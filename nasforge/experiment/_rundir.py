"""The run directory: the one place that names the files a search keeps in it.

Every module that reads or writes a run's files asks :class:`RunDir` for their paths, so a name
is spelled once. The leaderboard and the best architecture are refreshed after every trial
(:func:`write_run_files`).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nasforge.errors import ConfigError, StorageError
from nasforge.experiment._storage import OptunaStorage

if TYPE_CHECKING:
    from nasforge.config import SearchConfig
    from nasforge.experiment._experiment import Experiment

__all__ = ["RunDir", "atomic_write", "resolve_run_dir", "write_run_files"]


class RunDir:
    """A run directory and the paths of the files in it.

    The class attributes are the file names; the properties the paths in this directory.
    Nothing is created or read until a method says so.

    Example:
        >>> from nasforge.experiment._rundir import RunDir
        >>> RunDir("runs/digits-evolution").database.name
        'nasforge.db'
    """

    #: the trials, in an SQLite database (unless the search uses a shared ``storage:`` URL)
    DATABASE = "nasforge.db"
    #: the search's configuration, as ``nasforge search`` ran it
    CONFIG = "config.yaml"
    #: every trial, best first, refreshed after each trial
    LEADERBOARD = "leaderboard.csv"
    #: the best architecture so far (``nasforge train`` reads it)
    BEST_ARCHITECTURE = "best_architecture.json"
    #: the final training's metrics and test report
    FINAL = "final.json"
    #: the trained best model
    MODEL = "model.nasforge"
    #: the Pareto front of a multi-objective search, and its plot
    PARETO_JSON = "pareto.json"
    PARETO_PNG = "pareto.png"
    #: the folder of the HTML report
    REPORT = "report"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def database(self) -> Path:
        return self.path / self.DATABASE

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of :attr:`database`."""
        return f"sqlite:///{self.database}"

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def leaderboard(self) -> Path:
        return self.path / self.LEADERBOARD

    @property
    def best_architecture(self) -> Path:
        return self.path / self.BEST_ARCHITECTURE

    @property
    def final(self) -> Path:
        return self.path / self.FINAL

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def pareto_json(self) -> Path:
        return self.path / self.PARETO_JSON

    @property
    def pareto_png(self) -> Path:
        return self.path / self.PARETO_PNG

    @property
    def report(self) -> Path:
        return self.path / self.REPORT

    def holds_search(self) -> bool:
        """Whether a search keeps its trials here (the database file exists)."""
        return self.database.is_file()

    def read_config(self) -> dict[str, Any] | None:
        """The raw mapping of :attr:`config`, or None when it is missing or not a YAML mapping."""
        try:
            data = yaml.safe_load(self.config.read_text()) if self.config.is_file() else None
        except (OSError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def shared_storage(self) -> tuple[str, str] | None:
        """``(database URL, experiment name)`` of a run whose trials live in a shared database
        (its config's ``storage:``), or None."""
        data = self.read_config()
        if data is None or not isinstance(data.get("storage"), str):
            return None
        from nasforge.config import parse_config

        try:
            return data["storage"], parse_config(data, source=str(self.config)).run_name()
        except ConfigError:
            return None

    def open_storage(self, name: str | None = None) -> tuple[OptunaStorage, str]:
        """The storage of this run's trials, opened on experiment ``name``, and that name.

        The trials are in the run's own database, or in the shared one its config names (a worker
        of a search on a shared database, whose config also names the experiment).

        Args:
            name: the experiment; needed only when the database holds several.

        Raises:
            ConfigError: the directory holds no search, its database cannot be read, or holds no
                experiment ``name``.
        """
        if self.holds_search():
            url, where = self.database_url, str(self.database)
        elif (shared := self.shared_storage()) is not None:
            url, where, name = shared[0], shared[0], name or shared[1]
        else:
            raise ConfigError(
                f"{self.path} is not a nasforge run directory (no {self.DATABASE}); pass the run's folder"
            )
        storage = OptunaStorage(url)
        try:
            names = storage.names()
        except StorageError as exc:
            raise ConfigError(f"{where} is not a readable nasforge database: {exc}") from None
        if name is None:
            if len(names) != 1:
                raise ConfigError(f"{where} holds experiments {names}; name one")
            name = names[0]
        elif name not in names:
            raise ConfigError(f"{where} holds no experiment '{name}' (it holds {names})")
        storage.open(name)  # with the directions it was created with
        return storage, name


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file.

    A failed write (disk full, no permission) raises :class:`StorageError` saying which file and
    what to do, and leaves the previous version of the file in place.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # workers may share a run directory
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        hint = {
            errno.ENOSPC: "the disk is full: free space, then continue with --resume",
            errno.EDQUOT: "the disk quota is used up: free space, then continue with --resume",
            errno.EACCES: "no permission: make the run directory writable",
            errno.EROFS: "the file system is read-only: choose another --run-dir",
        }.get(exc.errno or 0, "check the run directory")
        raise StorageError(f"could not write {path}: {exc.strerror or exc} ({hint})") from exc


def leaderboard_rows(exp: Experiment) -> list[dict[str, Any]]:
    """One row per trial: completed ones best first, then pruned and failed ones by number."""
    ranked = exp.leaderboard()
    rest = [t for t in exp.trials if t.values is None]
    rows = []
    for rank, t in enumerate(ranked, start=1):
        rows.append({"rank": rank, **t.summary()})
    for t in rest:
        rows.append({"rank": "", **t.summary()})
    return rows


def write_run_files(exp: Experiment) -> None:
    """Refresh the leaderboard and best architecture files of ``exp.run_dir``."""
    if exp.run_dir is None:
        return
    files = RunDir(exp.run_dir)
    rows = leaderboard_rows(exp)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(files.leaderboard, buf.getvalue())
    best = exp.best()
    if best is not None:
        payload = {**best.architecture.to_dict(), "trial": best.number, "metrics": dict(best.metrics)}
        atomic_write(files.best_architecture, json.dumps(payload, indent=2) + "\n")


def resolve_run_dir(config: SearchConfig, *, resume: bool, base: Path | None = None) -> Path:
    """Where the run lives.

    An explicit ``run_dir`` is used as given. The default ``runs/<name>`` gets a ``-2``, ``-3``, ...
    suffix when it already holds a search, so a new run never touches an old one; with ``resume`` the
    newest of them is continued. With a shared ``storage`` URL the experiment is found by name in
    that database (a worker joins it, with or without ``resume``) and the run directory, default
    ``runs/<name>``, only holds this worker's files.
    """
    root = base or Path.cwd()
    if config.storage is not None:  # the database is shared: workers join the experiment by name
        return Path(config.run_dir) if config.run_dir is not None else root / "runs" / config.run_name()
    if config.run_dir is not None:
        path = Path(config.run_dir)
        if resume and not RunDir(path).holds_search():
            raise ConfigError(f"nothing to resume: {path} holds no search ({RunDir.DATABASE} is missing)")
        if not resume and RunDir(path).holds_search():
            raise ConfigError(
                f"{path} already holds a search; add --resume to continue it, or choose another --run-dir"
            )
        return path
    name = config.run_name()
    parent = root / "runs"
    pattern = re.compile(rf"^{re.escape(name)}(?:-(\d+))?$")
    taken = sorted(
        (int(m.group(1) or 1), p)
        for p in (parent.iterdir() if parent.is_dir() else [])
        if (m := pattern.match(p.name)) and RunDir(p).holds_search()
    )
    if resume:
        if not taken:
            raise ConfigError(
                f"nothing to resume: no run named '{name}' under {parent}; run without --resume to start one"
            )
        return taken[-1][1]
    if not taken:
        return parent / name
    return parent / f"{name}-{taken[-1][0] + 1}"


@dataclass(frozen=True)
class _Before:
    """What existed of a new run's directory before the run, so a run that fails before training
    anything can remove what it made (see :meth:`remove_new`)."""

    run_dir: Path
    entries: set[str] | None  # the names in run_dir, or None when it did not exist
    missing: tuple[Path, ...]  # its ancestors that did not exist, nearest first

    @classmethod
    def look(cls, run_dir: Path) -> _Before:
        entries = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else None
        missing = tuple(p for p in run_dir.parents if not p.exists())
        return cls(run_dir, entries, missing)

    def remove_new(self) -> None:
        """Remove what this run created: the directory itself (and the ``runs`` folder) if it
        created them, else the entries it added.

        Only for a new run that trained nothing (its constraints screened out every proposal, or
        its strategy could not be built): its database holds nothing worth keeping, and keeping it
        would only make the next attempt a ``-2`` run.
        """
        if self.entries is None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            for parent in self.missing:
                try:
                    parent.rmdir()
                except OSError:  # not empty: something else is in it now
                    break
            return
        for entry in self.run_dir.iterdir():
            if entry.name not in self.entries:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.unlink()
