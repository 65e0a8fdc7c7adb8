"""The report renders in a real browser: headless Chromium opens it from disk, with no server.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it when missing); without it the
test is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasforge.report import write_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} not found; install Debian's chromium package (.ci/run does)",
)


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "chromium-profile"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_the_leaderboard_and_every_plot(chain_run: Path, tmp_path: Path) -> None:
    page = write_report(chain_run, tmp_path / "report")
    source = page.read_text()
    images = source.count('<img class="plot"')
    rows = len(
        re.findall(r'<tr class="row">', source.split('id="leaderboard-table"')[1].split("</table>")[0])
    )
    assert images == 5 and rows == 10

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    # the DOM as the browser built it: the leaderboard's rows, the plots, and how many decoded
    board = re.search(r'<table class="data" id="leaderboard-table">(.*?)</table>', dom, re.S)
    assert board is not None and len(re.findall(r'<tr class="row">', board.group(1))) == rows
    assert len(re.findall(r'<img class="plot" src="data:image/png;base64,', dom)) == images
    decoded = re.search(r'<body data-images-decoded="(\d+)"', dom)
    assert decoded is not None and int(decoded.group(1)) == images
    for ident in ("summary", "leaderboard", "trajectory", "importance", "architectures", "failures"):
        assert f'<section id="{ident}">' in dom

    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri())
    with Image.open(shot) as img:
        assert img.size == (1200, 2000)
        pixels = np.asarray(img.convert("RGB"), dtype=float)
    # not a blank or error page: the blue of the trajectory's dots and the page's text are there
    blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 80)
    assert blue.sum() > 200 and pixels.std() > 20
