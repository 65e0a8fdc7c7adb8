"""Detection from the command line: search (options and YAML), show, train, predict, profile, and
the one-line errors of a space, estimator or option meant for the other kind of task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.deploy import Detector

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()
#: shapes-det small enough for seconds: 48 training images of 32x32, small shapes
DATA_OPTIONS = {"n_train": 48, "n_val": 16, "n_test": 16, "size": 32, "min_size": 6, "max_size": 12}
SMALL = {"data": {"options": DATA_OPTIONS}, "estimator": {"steps_per_epoch": 2, "batch_size": 16}}


def _one_line_error(result: object, *needles: str) -> None:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    flat = " ".join(output.split())  # rich wraps long lines at 80 columns
    for needle in needles:
        assert needle in flat, (needle, output)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-trial detection search through the options (the YAML file only makes the data tiny)."""
    base = tmp_path_factory.mktemp("detcli")
    cfg = base / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    result = runner.invoke(
        app,
        [
            "search", str(cfg), "--dataset", "shapes-det", "--space", "detector", "--estimator", "train_det",
            "--strategy", "random", "--trials", "2", "--epochs", "1", "--final-epochs", "1",
            "--run-dir", str(base / "run"), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "test mAP" in flat and "accuracy" not in flat
    return base / "run"


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Two shapes-det test images of another size than the network's (48x40), as PNG files."""
    task = nf.data.load_detection("shapes-det", n_train=2, n_val=1, n_test=2, size=48, seed=1)
    pixels = task.pipeline.denormalize(task.x_test)
    paths = []
    for i, x in enumerate(pixels):
        path = tmp_path / f"img{i}.png"
        array = (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:40]  # 48 wide, 40 high
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths


def test_search_writes_a_detector_and_final_json_with_map(run: Path) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["space"]["name"] == "detector" and config["objectives"] == ["val_map"]
    assert config["estimator"]["name"] == "train_det" and config["estimator"]["steps_per_epoch"] == 2
    final = json.loads((run / "final.json").read_text())
    metrics = final["final_metrics"]
    assert final["task_kind"] == "detection" and final["test_report"] is None
    for key in ("val_map", "val_map_50", "test_map", "test_map_50"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["epochs"] == 1 and final["task"]["class_names"] == ["circle", "square", "triangle"]
    model = nf.load(run / "model.nasforge")
    assert isinstance(model, Detector) and model.input_shape == (3, 32, 32)
    assert model.metrics["test_map"] == metrics["test_map"]


def test_show_reports_map(run: Path) -> None:
    shown = runner.invoke(app, ["show", str(run)])
    assert shown.exit_code == 0, shown.output
    flat = " ".join(shown.output.split())
    assert "final training: val mAP" in flat and "test mAP" in flat and "best: trial" in flat
    as_json = json.loads(runner.invoke(app, ["show", str(run), "--json"]).output)
    assert "test_map" in as_json["final"]["final_metrics"]
    assert "val_map" in as_json["trials"][0]


def test_predict_prints_boxes_json_and_saves_annotated_images(
    run: Path, images: list[Path], tmp_path: Path
) -> None:
    model = str(run / "model.nasforge")
    # conf 0 keeps every decoded peak: at least one box per image, at most --max-det
    lines = runner.invoke(app, ["predict", model, str(images[0].parent), "--conf", "0", "--max-det", "2"])
    assert lines.exit_code == 0, lines.output
    assert "detector of 3 classes" in lines.output and "img0.png 40x48:" in lines.output
    as_json = runner.invoke(
        app, ["predict", model, *map(str, images), "--json", "--conf", "0", "--max-det", "2"]
    )
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output)
    assert [r["source"] for r in payload["results"]] == [str(p) for p in images]
    for r in payload["results"]:
        assert r["orig_shape"] == [40, 48] and 1 <= len(r["boxes"]) <= 2
        assert {"name", "class", "confidence", "box"} <= set(r["boxes"][0])

    out = tmp_path / "out" / "nested"
    saved = runner.invoke(
        app, ["predict", model, *map(str, images), "--save-dir", str(out), "--conf", "0", "--max-det", "3"]
    )
    assert saved.exit_code == 0, saved.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.json", "img0.png", "img1.json", "img1.png"]
    with Image.open(out / "img0.png") as drawn:
        assert drawn.size == (48, 40)
    # the files hold what the Python API returns for the same image and thresholds
    expected = nf.load(model)(images[0], conf=0, max_det=3)[0]
    assert json.loads((out / "img0.json").read_text()) == json.loads(expected.to_json())
    assert (
        np.asarray(Image.open(out / "img0.png").convert("RGB")).tolist()
        == np.asarray(expected.plot()).tolist()
    )


def test_predict_save_dir_names_are_unique(run: Path, images: list[Path], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    twin = other / images[0].name
    twin.write_bytes(images[0].read_bytes())
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["predict", str(run / "model.nasforge"), str(images[0]), str(twin), "--save-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["img0-2.json", "img0-2.png", "img0.json", "img0.png"]


def test_predict_errors_are_one_line_and_write_nothing(run: Path, images: list[Path], tmp_path: Path) -> None:
    model = str(run / "model.nasforge")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line_error(
        runner.invoke(app, ["predict", model, str(images[0]), "--save-dir", str(blocker / "out")]),
        "cannot write the --save-dir directory",
    )
    _one_line_error(runner.invoke(app, ["predict", model, str(images[0]), "--top", "2"]), "is a detector")
    _one_line_error(runner.invoke(app, ["predict", model, str(tmp_path / "missing.png")]), "missing.png")
    _one_line_error(
        runner.invoke(app, ["predict", "digits-s", str(images[0]), "--conf", "0.5", "--max-det", "3"]),
        "--conf, --max-det: detectors only",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "img0.png", "img1.png"]


def test_predict_save_dir_with_a_classifier_writes_json(tmp_path: Path) -> None:
    digit = tmp_path / "seven.png"
    Image.fromarray(np.eye(8, dtype=np.uint8)[::-1] * 255).save(digit)
    out = tmp_path / "cls"
    result = runner.invoke(app, ["predict", "digits-s", str(digit), "--save-dir", str(out), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["seven.json"]
    saved = json.loads((out / "seven.json").read_text())
    assert saved["source"] == str(digit) and len(saved["top"]) == 2
    assert saved["top1"] == nf.load("digits-s")(digit)[0].top1


def test_train_a_detection_run(run: Path) -> None:
    result = runner.invoke(app, ["train", str(run), "--epochs", "1", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "trained 1 epochs on shapes-det" in flat and "test mAP" in flat
    model = nf.load(run / "trained.nasforge")
    assert isinstance(model, Detector) and model.provenance["settings"]["batch_size"] == 16
    _one_line_error(
        runner.invoke(app, ["train", str(run), "--epochs", "1", "--augment", "shift"]),
        "--augment: classification only",
    )
    _one_line_error(
        runner.invoke(app, ["train", str(run), "--epochs", "1", "--dataset", "digits"]),
        "is a detection network",
        "digits is a classification dataset",
    )
    _one_line_error(
        runner.invoke(app, ["train", "--from", str(run / "model.nasforge"), "--dataset", "shapes-det"]),
        "fine-tuning detectors is not supported",
    )
    assert not (run / "trained-2.nasforge").exists()


def test_profile_a_detector(run: Path) -> None:
    model = str(run / "model.nasforge")
    result = runner.invoke(app, ["profile", model, "--repeats", "2", "--warmup", "0", "--json"])
    assert result.exit_code == 0, result.output
    profile = json.loads(result.output)
    assert profile["params"] == nf.load(model).metrics["params"] and profile["flops"] > 0
    assert profile["latency"][0]["runtime"] == "torch_eager"  # the first row


def test_yaml_detection_search_picks_the_detection_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "det.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "shapes-det", "options": DATA_OPTIONS},
                "estimator": {"epochs": 1, "steps_per_epoch": 1, "resolution": 16},
                "strategy": "random",
                "trials": 1,
                "final": {"epochs": 0},
            }
        )
    )
    result = runner.invoke(app, ["search", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "shapes-det-random"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["space"] == {"name": "detector", "max_params": 100_000}
    assert config["estimator"]["name"] == "train_det" and config["estimator"]["resolution"] == 16
    assert config["objectives"] == ["val_map"] and config["final"]["lr"] == 0.003
    shown = runner.invoke(app, ["show", str(run), "--json"])
    assert json.loads(shown.output)["trials"][0]["resolution"] == 16


MISMATCHES = [
    (["--dataset", "shapes-det", "--space", "chain_cnn"], "space 'chain_cnn' builds classification networks"),
    (["--dataset", "shapes-det", "--estimator", "train"], "estimator 'train' estimates classification"),
    (["--dataset", "digits", "--space", "detector"], "space 'detector' builds detection networks"),
    (["--dataset", "digits", "--estimator", "train_det"], "estimator 'train_det' estimates detection"),
    (["--dataset", "shapes-det", "--metric", "accuracy"], "detectors are ranked by val_map"),
    (["--dataset", "shapes-dett"], "Did you mean 'shapes-det'?"),
]


@pytest.mark.parametrize(("options", "message"), MISMATCHES)
def test_a_component_for_the_other_kind_of_task_is_one_line(
    options: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _one_line_error(runner.invoke(app, ["search", *options, "--trials", "1"]), message)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"estimator": {"name": "train", "epochs": 1}}, "estimator 'train' estimates classification"),
        ({"objectives": ["val_accuracy"]}, "objective val_accuracy is not measured on detection data"),
        ({"final": {"optimizer": "sgd"}}, "final: optimizer: classification only"),
    ],
)
def test_yaml_mismatches_are_one_line(
    section: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"name": "shapes-det"}, **section}))
    _one_line_error(runner.invoke(app, ["search", str(cfg)]), message)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]
