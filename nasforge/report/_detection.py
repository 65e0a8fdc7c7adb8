"""The report's "Final detector" section: a detection run's final test mAP, and its boxes on test images.

A run is a detection run when its first objective is a COCO mAP (``val_map``, ``val_map_50``,
``val_map_75``), its trials report ``val_map``, or its ``final.json`` / model file says
``task: detection``; its final model is a :class:`~nasforge.deploy.Detector` (``model.nasforge``
in the run directory, read with :func:`~nasforge.deploy.load_detector`: safetensors, no code
runs). Accuracy and the confusion matrix mean nothing for it, so this section replaces the
classification one: the final metrics (from ``final.json``, else the model file's) and a few test
images with the boxes the model finds (:meth:`Results.plot <nasforge.detect.Results.plot>`),
embedded as PNGs. The images come from the dataset the model was trained on, as the run's
``config.yaml`` names it (with its options), else as its provenance names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from nasforge.experiment import Experiment
from nasforge.experiment._rundir import RunDir
from nasforge.report._final import read_final

__all__ = ["DETECTION_PNGS", "MAP_METRICS", "detection_section", "is_detection_run"]

#: the metrics that make a run a detection run when they are its first objective
MAP_METRICS = ("val_map", "val_map_50", "val_map_75")
N_IMAGES = 4
DETECTION_PNGS = tuple(f"detections_{i}.png" for i in range(1, N_IMAGES + 1))
#: small images are drawn enlarged to about this many pixels per side, so labels stay legible
_DRAW_SIDE = 192


def is_detection_run(exp: Experiment) -> bool:
    """Whether ``exp`` searched detectors (see the module docstring)."""
    if exp.objective.names[0] in MAP_METRICS:
        return True
    if any("val_map" in t.metrics for t in exp.trials):
        return True
    final = read_final(exp.run_dir) or {}
    metrics = final.get("final_metrics")
    return final.get("task") == "detection" or (isinstance(metrics, dict) and "test_map" in metrics)


def _f(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def detection_section(
    exp: Experiment,
    out: Path,
    plot: Callable[[Path | None, str], str],
    kv: Callable[[Sequence[tuple[str, str]]], str],
    config: Mapping[str, Any],
) -> str:
    """HTML of a detection run's final model: its metrics and predicted test images.

    Args:
        exp: the run.
        out: where to write the PNGs.
        plot: the page's embedder of a PNG (records it as written).
        kv: the page's key-value table maker.
        config: the run's ``config.yaml`` ({} without one).
    """
    run_dir = exp.run_dir
    model_path = RunDir(run_dir).model if run_dir is not None else None
    final = read_final(run_dir)
    model, problem = None, ""
    if model_path is not None and model_path.is_file():
        from nasforge.deploy import load_detector
        from nasforge.errors import NasforgeError

        try:
            model = load_detector(model_path)
        except NasforgeError as exc:
            problem = f"{RunDir.MODEL} could not be read: {exc}"
    metrics: Mapping[str, Any] = {}
    if final is not None and isinstance(final.get("final_metrics"), dict):
        metrics = final["final_metrics"]
    elif model is not None:
        metrics = model.metrics
    if not metrics and model is None:
        hint = (
            "No final model: a search's final training writes model.nasforge; from Python, "
            f"<code>exp.best().train(task).save(run_dir / {escape(repr(RunDir.MODEL))})</code>."
        )
        return f'<p class="note">{escape(problem) if problem else hint}</p>'
    pairs = [
        ("trial", escape(str(final.get("trial", ""))) if final else "n/a"),
        ("test mAP@[.5:.95]", _f(metrics.get("test_map"))),
        ("test mAP@.5", _f(metrics.get("test_map_50"))),
        ("validation mAP@[.5:.95]", _f(metrics.get("val_map"))),
        ("validation mAP@.5", _f(metrics.get("val_map_50"))),
        ("parameters", _f(metrics.get("params"))),
        ("epochs", _f(metrics.get("epochs"))),
    ]
    parts = [kv(pairs)]
    if problem:
        parts.append(f'<p class="note">{escape(problem)}</p>')
    if model is not None:
        parts.append(_predicted_images(model, out, plot, config))
    return "\n".join(parts)


def _test_images(model: Any, config: Mapping[str, Any]) -> tuple[Any, str]:
    """The first test images (pixels in [0, 1]) of the model's dataset, and where they came from."""
    from nasforge.data import DETECTION_DATASETS, load_detection

    data = config.get("data")
    name = str(model.provenance.get("dataset") or "")
    options: dict[str, Any] = {}
    root = None
    if isinstance(data, dict) and data.get("name") in DETECTION_DATASETS:
        name = str(data["name"])
        options = {k: v for k, v in data.items() if k not in ("name", "root", "data_dir")}
        root = data.get("root") or data.get("data_dir")
    if name not in DETECTION_DATASETS:
        raise ValueError(f"the model names no detection dataset to take test images from (got {name!r})")
    task = load_detection(name, root, **options)
    if not len(task.x_test):
        raise ValueError(f"{name} has no test images")
    return task.pipeline.denormalize(task.x_test[:N_IMAGES]), name


def _predicted_images(
    model: Any, out: Path, plot: Callable[[Path | None, str], str], config: Mapping[str, Any]
) -> str:
    import torch

    from nasforge.detect import Results
    from nasforge.errors import NasforgeError

    try:
        pixels, name = _test_images(model, config)
    except (NasforgeError, OSError, ValueError, TypeError) as exc:
        return f'<p class="note">No test images to draw: {escape(str(exc))}</p>'
    results = model(pixels, conf=0.25)
    figures = []
    for i, r in enumerate(results):
        h, w = r.orig_shape
        k = max(1, math.ceil(_DRAW_SIDE / max(h, w)))
        big = r.orig_img.repeat(k, axis=0).repeat(k, axis=1)  # nearest-neighbour enlargement
        data = r.boxes.data.clone()
        data[:, :4] *= k
        drawn = Results(big, r.path, r.names, data if len(data) else torch.zeros(0, 6)).plot()
        path = out / DETECTION_PNGS[i]
        drawn.save(path)
        found = escape(r.verbose().rstrip(", ") or "no boxes")
        figures.append(
            f'<figure style="margin:0">{plot(path, f"test image {i + 1} with predicted boxes")}'
            f'<figcaption class="note">{found}</figcaption></figure>'
        )
    caption = (
        f"The final model on the first {len(results)} test images of {escape(name)}: boxes with "
        "confidence >= 0.25 after NMS (IoU 0.7), as <code>model(images)</code> returns them"
        + (", drawn enlarged" if any(max(r.orig_shape) < _DRAW_SIDE for r in results) else "")
        + "."
    )
    return (
        f"<h3>Predictions</h3>"
        f'<div class="columns" id="detections">{"".join(figures)}</div><p class="note">{caption}</p>'
    )
