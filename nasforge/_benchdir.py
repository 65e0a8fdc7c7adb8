"""Where the benchmark tables live: ``--bench-dir``, else ``$NASFORGE_BENCH_DIR``.

The benchmarks directory holds one folder per benchmark, as shipped in ``shared/benchmarks``::

    <root>/nb201/nb201_cifar10.csv
    <root>/nas-bench-macro/nas-bench-macro_cifar10.json

Table readers call :func:`bench_file`, which also accepts the benchmark's own folder as the root.
Low-level on purpose: the estimators that read the tables (``estimate``) sit below the benchmark
harness (``bench``), which re-exports these names.
"""

from __future__ import annotations

import os
from pathlib import Path

from nasforge.errors import DataError

__all__ = ["ENV_VAR", "bench_file", "bench_root"]

ENV_VAR = "NASFORGE_BENCH_DIR"
"""Environment variable naming the benchmarks directory when no root is passed."""


def bench_root(root: str | Path | None = None) -> Path:
    """Resolve the benchmarks directory.

    Args:
        root: the directory; ``None`` reads the ``NASFORGE_BENCH_DIR`` environment variable.

    Returns:
        The directory as an absolute path (``~`` expanded).

    Raises:
        DataError: if neither is set, or the directory does not exist; the message says how to
            point nasforge at the tables.

    Example:
        >>> import tempfile
        >>> bench_root(tempfile.gettempdir()).is_dir()
        True
    """
    source = "the bench directory argument"
    if root is None or str(root) == "":
        env = os.environ.get(ENV_VAR, "")
        if not env:
            raise DataError(
                "no benchmarks directory given: pass --bench-dir DIR (or root=DIR in Python), or set "
                f"the environment variable {ENV_VAR}=DIR; DIR holds nb201/nb201_cifar10.csv, "
                "nas-bench-macro/nas-bench-macro_cifar10.json, ..."
            )
        root, source = env, f"${ENV_VAR}"
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataError(
            f"benchmarks directory {path} (from {source}) does not exist; pass --bench-dir DIR or set "
            f"{ENV_VAR}=DIR to the folder that holds nb201/, nas-bench-macro/, ..."
        )
    return path


def bench_file(root: str | Path | None, folder: str, filename: str) -> Path:
    """Locate ``<root>/<folder>/<filename>``, or ``<root>/<filename>`` when root is the folder itself.

    Args:
        root: the benchmarks directory (or the benchmark's folder); ``None`` reads
            ``NASFORGE_BENCH_DIR`` (see :func:`bench_root`).
        folder: the benchmark's folder name, e.g. ``"nb201"``.
        filename: the table's file name, e.g. ``"nb201_cifar10.csv"``.

    Raises:
        DataError: if the directory or the file is missing; the message lists the paths tried.
    """
    base = bench_root(root)
    tried = [base / folder / filename, base / filename]
    for path in tried:
        if path.is_file():
            return path
    raise DataError(
        f"benchmark table {filename} not found (looked for {tried[0]} and {tried[1]}); pass --bench-dir "
        f"(or root=) the directory that holds {folder}/{filename}, or set {ENV_VAR} to it"
    )
