"""Files kept up to date in a run directory: leaderboard.csv and best_architecture.json."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import StorageError

if TYPE_CHECKING:
    from nasforge.experiment._experiment import Experiment

__all__ = ["atomic_write", "write_run_files"]

LEADERBOARD = "leaderboard.csv"
BEST_ARCH = "best_architecture.json"


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
    rows = leaderboard_rows(exp)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(exp.run_dir / LEADERBOARD, buf.getvalue())
    best = exp.best()
    if best is not None:
        payload = {**best.architecture.to_dict(), "trial": best.number, "metrics": dict(best.metrics)}
        atomic_write(exp.run_dir / BEST_ARCH, json.dumps(payload, indent=2) + "\n")
