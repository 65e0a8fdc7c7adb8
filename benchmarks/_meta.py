"""What every benchmark result records about how it was made: command, date, machine, commit.

Imported by the scripts in this directory (run them from the repository root as
``python benchmarks/<script>.py``; Python puts this directory on the import path).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def git_commit() -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ from it ("unknown" outside git)."""
    root = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


# Taken when the script starts (it imports this module first): a long run writes its results
# several times, and the code it runs is the code checked out when it began.
_STARTED = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
_COMMIT = git_commit()


def run_meta() -> dict[str, str]:
    """Command line, start and write dates (UTC), machine, Python, CPU count, and the git commit
    checked out when the run started."""
    return {
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "started": _STARTED,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "commit": _COMMIT,
    }
