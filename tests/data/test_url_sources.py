"""``http(s)://`` image sources: read by the one image pipeline, so a classifier, a detector and
``nasforge predict`` take them; every failure is one line naming the URL. A local ``http.server``
on 127.0.0.1 serves the files (never the internet)."""

from __future__ import annotations

import functools
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.data._pipeline import as_images, image_files, read_url_image
from nasforge.errors import DataError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no request lines in the test output
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The base URL of a local server for a folder with an 8x8 digit, a 40x48 RGB image and a text file."""
    root = tmp_path_factory.mktemp("www")
    Image.fromarray(np.eye(8, dtype=np.uint8)[::-1] * 255).save(root / "seven.png")
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "shapes.png")
    (root / "notes.txt").write_text("not an image\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens there once it is closed


def test_a_url_reads_the_same_pixels_as_the_file(served: tuple[str, Path]) -> None:
    base, root = served
    for name in ("seven.png", "shapes.png"):
        from_url = as_images(f"{base}/{name}")[0]
        from_file = as_images(root / name)[0]
        assert from_url.shape == from_file.shape and bool((from_url == from_file).all())
    assert image_files([f"{base}/seven.png", root]) == [f"{base}/seven.png", *sorted(root.glob("*.png"))]


def test_a_classifier_and_a_detector_take_urls(served: tuple[str, Path], tmp_path: Path) -> None:
    base, root = served
    model = nf.load("digits-s")
    by_url, by_file = model([f"{base}/seven.png", root / "seven.png"])
    assert by_url.source == f"{base}/seven.png"
    np.testing.assert_array_equal(by_url.probs, by_file.probs)

    from nasforge.data import load_detection
    from nasforge.estimate import train_detector
    from nasforge.space import DetectorSpace

    task = load_detection("shapes-det", n_train=8, n_val=2, n_test=2, size=32, min_size=6, max_size=12)
    space = DetectorSpace(stem=[8], neck_width=[16], head_width=[16]).bind(task.input_shape, task.num_classes)
    detector = train_detector(space.sample(np.random.default_rng(0)), task, epochs=1, batch_size=8, threads=1)
    url_result, file_result = detector([f"{base}/shapes.png", root / "shapes.png"], conf=0.0, max_det=5)
    assert url_result.path == f"{base}/shapes.png" and url_result.orig_shape == (40, 48)
    assert url_result.boxes.data.tolist() == file_result.boxes.data.tolist()


@pytest.mark.parametrize(
    ("path", "problem"),
    [("missing.png", "HTTP 404"), ("notes.txt", "not an image")],
)
def test_a_bad_url_is_one_data_error_naming_it(served: tuple[str, Path], path: str, problem: str) -> None:
    url = f"{served[0]}/{path}"
    with pytest.raises(DataError, match=problem) as caught:
        nf.load("digits-s")(url)
    assert url in str(caught.value) and "\n" not in str(caught.value)


def test_unreachable_and_too_large_urls(served: tuple[str, Path]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/seven.png"
    with pytest.raises(DataError, match=r"cannot read image http://127\.0\.0\.1:\d+/seven\.png: .*refused"):
        read_url_image(url, timeout=5)
    with pytest.raises(DataError, match="more than the 100 bytes allowed"):
        read_url_image(f"{served[0]}/shapes.png", max_bytes=100)


def test_cli_predict_takes_a_url_and_refuses_a_bad_one(served: tuple[str, Path]) -> None:
    base, _ = served
    runner = CliRunner()
    ok = runner.invoke(app, ["predict", "digits-s", f"{base}/seven.png", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["predictions"][0]["source"] == f"{base}/seven.png"
    bad = runner.invoke(app, ["predict", "digits-s", f"http://127.0.0.1:{_closed_port()}/x.png"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and "x.png" in bad.output
