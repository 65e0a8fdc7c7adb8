"""Writability checks made before any work: which destinations are refused, and that nothing is created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasforge._paths import check_writable_file, ensure_writable_dir, next_free_path
from nasforge.errors import ConfigError

# A pseudo file system refuses new entries even to root (tests run as root, so mode bits stop nothing).
READ_ONLY = Path("/proc")


def test_a_new_directory_below_writable_ones_is_fine_and_not_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "run"
    assert ensure_writable_dir(target) == target
    assert not (tmp_path / "a").exists()
    assert check_writable_file(tmp_path / "x" / "m.onnx") == tmp_path / "x" / "m.onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the probe is removed


def test_paths_below_a_file_or_onto_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(
        ConfigError, match=r"cannot write the run directory .*notes.txt/run: .*notes.txt is a file"
    ):
        ensure_writable_dir(tmp_path / "notes.txt" / "run", what="run directory")
    with pytest.raises(ConfigError, match=r"notes\.txt is a file, not a directory; give --out"):
        ensure_writable_dir(tmp_path / "notes.txt", hint="give --out")
    with pytest.raises(ConfigError, match=r"notes\.txt is a file"):
        check_writable_file(tmp_path / "notes.txt" / "deeper" / "m.onnx")
    with pytest.raises(ConfigError, match="it is a directory"):
        check_writable_file(tmp_path)


@pytest.mark.skipif(not READ_ONLY.is_dir(), reason="needs /proc")
def test_a_directory_that_accepts_no_files_is_refused_even_for_root() -> None:
    with pytest.raises(ConfigError, match="/proc does not accept new files"):
        ensure_writable_dir(READ_ONLY / "nasforge-run")
    with pytest.raises(ConfigError, match="/proc does not accept new files"):
        check_writable_file(READ_ONLY / "model.nasforge")


def test_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: mode bits do not stop writes")
        with pytest.raises(ConfigError, match="does not accept new files"):
            ensure_writable_dir(locked / "run")
    finally:
        locked.chmod(0o755)


def test_next_free_path_never_replaces_a_file(tmp_path: Path) -> None:
    first = tmp_path / "trained.nasforge"
    assert next_free_path(first) == first
    first.write_text("1")
    assert next_free_path(first) == tmp_path / "trained-2.nasforge"
    (tmp_path / "trained-2.nasforge").write_text("2")
    (tmp_path / "trained-7.nasforge").write_text("7")
    assert next_free_path(first) == tmp_path / "trained-8.nasforge"  # after the newest, like runs/
