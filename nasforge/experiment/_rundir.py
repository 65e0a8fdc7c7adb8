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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nasforge.errors import ConfigError, StorageError
from nasforge.experiment._storage import OptunaStorage

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment

__all__ = ["RunDir", "atomic_write", "write_run_files"]


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
