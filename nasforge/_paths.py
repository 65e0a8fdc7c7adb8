"""Can we write there? Checked before the work starts, so a bad destination costs nothing.

Every command that writes files (a run directory, a model, an export, a report, benchmark
results) asks here first; an unusable destination is a :class:`~nasforge.errors.ConfigError`
saying which path, why, and what to do, instead of an ``OSError`` traceback after minutes of work.
The checks create nothing: a directory that does not exist yet is judged by its nearest existing
ancestor, which must be a directory where a probe entry can be created (so a read-only file
system or a pseudo file system such as ``/proc`` is refused even for root).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from nasforge.errors import ConfigError

__all__ = ["check_writable_file", "ensure_writable_dir", "next_free_path"]


def ensure_writable_dir(path: str | Path, *, what: str = "output directory", hint: str = "") -> Path:
    """Check that ``path`` is, or can be created as, a directory we can write files in.

    Args:
        path: the directory (it need not exist yet; nothing is created).
        what: what it is, for the message ("run directory", "--out directory", ...).
        hint: how to fix it, e.g. "choose another --run-dir"; a generic hint by default.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` or one of its ancestors is a file, or the directory that would hold it
            cannot be written.
    """
    path = Path(path)
    reason = _dir_problem(path)
    if reason:
        raise ConfigError(f"cannot write the {what} {path}: {reason}; {hint or 'choose another location'}")
    return path


def check_writable_file(path: str | Path, *, what: str = "output file", hint: str = "") -> Path:
    """Check that a file can be written at ``path`` (created, or replaced if it exists).

    Args:
        path: the file.
        what: what it is, for the message ("model file", "--out file", ...).
        hint: how to fix it; a generic hint by default.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ConfigError: ``path`` is a directory, its directory cannot be created or written, or the
            existing file is read-only.
    """
    path = Path(path)
    fix = hint or "choose another file name or location"
    if path.is_dir():
        raise ConfigError(f"cannot write the {what} {path}: it is a directory; {fix}")
    reason = _dir_problem(path.parent)
    if reason:
        raise ConfigError(f"cannot write the {what} {path}: {reason}; {fix}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write the {what} {path}: the file is read-only; {fix}")
    return path


def _dir_problem(path: Path) -> str:
    """Why ``path`` cannot be (made) a directory to write in; "" if it can. Creates nothing."""
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory"
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:  # tried, not guessed from mode bits: root ignores them, read-only file systems do not
        probe = tempfile.mkdtemp(prefix=".nasforge-probe-", dir=existing)
    except OSError as exc:
        return f"{existing} does not accept new files ({exc.strerror or exc})"
    with contextlib.suppress(OSError):
        os.rmdir(probe)
    return ""


def next_free_path(path: str | Path) -> Path:
    """``path`` if nothing is there, else the next ``<stem>-N<suffix>`` after the highest taken N.

    The numbering follows run directories (``runs/<name>-2``): the newest file has the highest
    number, and an earlier file is never replaced.

    Example:
        >>> next_free_path("/nonexistent/trained.nasforge")
        PosixPath('/nonexistent/trained.nasforge')
    """
    path = Path(path)
    if not path.exists():
        return path
    stem, suffix = path.name.removesuffix(path.suffix), path.suffix
    pattern = re.compile(rf"^{re.escape(stem)}-(\d+){re.escape(suffix)}$")
    taken = [int(m.group(1)) for p in path.parent.iterdir() if (m := pattern.match(p.name))]
    return path.with_name(f"{stem}-{max([1, *taken]) + 1}{suffix}")
