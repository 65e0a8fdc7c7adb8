"""``python -m nasforge`` is the ``nasforge`` command."""

import subprocess
import sys


def test_python_m_nasforge_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nasforge", "list"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "evolution" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nasforge", "search", "--strategy", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr + bad.stdout
