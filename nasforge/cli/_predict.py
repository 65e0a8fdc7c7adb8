"""``nasforge predict``: a model (classifier or detector) on images, printed or written to files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasforge.cli._app import out, user_errors
from nasforge.errors import ConfigError

__all__ = ["predict"]


def predict(
    model: Annotated[
        Path,
        typer.Argument(
            help="A .nasforge model file, classifier or detector (a search writes <run_dir>/model.nasforge), "
            "or a zoo model name (nasforge zoo lists them)."
        ),
    ],
    images: Annotated[
        list[str],
        typer.Argument(
            help="Image files (PNG, JPEG, ...), folders of them, or http(s):// URLs (downloaded into memory)."
        ),
    ],
    top: Annotated[
        int | None, typer.Option("--top", min=1, help="Classes shown per image (classifiers) [default: 3].")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON instead: a classifier's top classes, or a detector's boxes per image "
            "(Results.to_json: name, class, confidence, box x1 y1 x2 y2 in the image's pixels).",
        ),
    ] = False,
    save_dir: Annotated[
        Path | None,
        typer.Option(
            "--save-dir",
            help="Write one file per image here, named after the image (img.png gives img.png / "
            "img.json; a second image of that name img-2): for a detector the image with its boxes "
            "drawn (.png) and its boxes (.json); for a classifier its top classes (.json). Created if "
            "missing; existing files of those names are replaced.",
        ),
    ] = None,
    conf: Annotated[
        float | None,
        typer.Option("--conf", min=0.0, max=1.0, help="Detectors: minimum box confidence [default: 0.25]."),
    ] = None,
    iou: Annotated[
        float | None,
        typer.Option(
            "--iou",
            min=0.0,
            max=1.0,
            help="Detectors: IoU threshold of the non-maximum suppression [default: 0.7].",
        ),
    ] = None,
    max_det: Annotated[
        int | None,
        typer.Option("--max-det", min=1, help="Detectors: at most this many boxes per image [default: 300]."),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="Where the model runs: cpu (default), auto, cuda, cuda:N, mps.")
    ] = "cpu",
) -> None:
    """Classify images with a saved model (each image's most probable classes), or find objects
    with a detector (each image's boxes).

    Images are converted to the model's channels, resized to its input size and normalised as its
    training data was. An image far from that size (a 1-pixel side, smaller than the input, or
    more than 2x larger on a side) gets a warning: the prediction may be meaningless. A
    detector's boxes are mapped back to each original image's pixels.
    """
    with user_errors():
        from nasforge._paths import ensure_writable_dir
        from nasforge.deploy import load
        from nasforge.deploy._model import describe_sources
        from nasforge.errors import DataError

        if save_dir is not None:  # before any work: a full disk is not found after the predictions
            ensure_writable_dir(save_dir, what="--save-dir directory", hint="give another --save-dir")
        loaded = load(model, device=device)
        files = describe_sources(images)
        if not files:
            raise DataError(f"no image files (PNG, JPEG, ...) in {', '.join(images)}")
        detector = loaded.task == "detection"
        if detector and top is not None:
            raise ConfigError(f"--top ranks classes; {model} is a detector (use --max-det for boxes)")
        if not detector:
            given = [
                f"--{k}" for k, v in (("conf", conf), ("iou", iou), ("max-det", max_det)) if v is not None
            ]
            if given:
                raise ConfigError(f"{', '.join(given)}: detectors only; {model} is a classifier (use --top)")
        if detector:
            _predict_boxes(loaded, model, files, as_json, save_dir, conf=conf, iou=iou, max_det=max_det)
            return
        k = top if top is not None else 3
        preds = loaded(files)
        if save_dir is not None:
            for name, p in zip(_output_names(files), preds, strict=True):
                _write(save_dir / f"{name}.json", json.dumps(p.to_dict(k), indent=2) + "\n")
        if as_json:
            payload = {"model": str(model), "predictions": [p.to_dict(k) for p in preds]}
            out.print_json(json.dumps(payload))
            return
        table = Table(title=f"{model.name}: {len(loaded.class_names)} classes, input {loaded.input_shape}")
        table.add_column("image", overflow="fold")
        table.add_column("class")
        table.add_column("prob", justify="right")
        if k > 1:
            table.add_column("next")
        for p in preds:
            ranked = p.top(k)
            row = [escape(p.source), escape(ranked[0][0]), f"{ranked[0][1]:.1%}"]
            if k > 1:
                row.append(escape(", ".join(f"{n} {q:.1%}" for n, q in ranked[1:])))
            table.add_row(*row)
        out.print(table)
        if save_dir is not None:
            out.print(f"{len(preds)} JSON files in {escape(str(save_dir))}", highlight=False)


def _predict_boxes(
    detector: Any,
    model: Path,
    files: list[Path | str],
    as_json: bool,
    save_dir: Path | None,
    **thresholds: Any,
) -> None:
    """``nasforge predict`` with a detector: a line per image (or JSON), and with ``save_dir``
    each image drawn with its boxes and its boxes as JSON."""
    options = {k: v for k, v in thresholds.items() if v is not None}
    results = detector(files, **options)
    if save_dir is not None:
        for name, r in zip(_output_names(files), results, strict=True):
            r.save(save_dir / f"{name}.png")
            _write(save_dir / f"{name}.json", r.to_json() + "\n")
    if as_json:
        payload = {
            "model": str(model),
            "results": [
                {"source": r.path, "orig_shape": list(r.orig_shape), "boxes": json.loads(r.to_json())}
                for r in results
            ],
        }
        out.print_json(json.dumps(payload))
        return
    c, h, w = detector.input_shape
    out.print(
        f"{escape(model.name)}: detector of {len(detector.class_names)} classes "
        f"({', '.join(detector.class_names)}), input {c}x{h}x{w}",
        highlight=False,
        soft_wrap=True,
    )
    for r in results:
        found = r.verbose().rstrip(", ")
        out.print(
            f"{escape(r.path)} {r.orig_shape[0]}x{r.orig_shape[1]}: {escape(found)}",
            highlight=False,
            soft_wrap=True,
        )
        for box in r.summary(decimals=1):
            b = box["box"]
            out.print(
                f"  {escape(box['name'])} {box['confidence']:.2f} at "
                f"({b['x1']:g}, {b['y1']:g}, {b['x2']:g}, {b['y2']:g})",
                highlight=False,
                soft_wrap=True,
            )
    if save_dir is not None:
        out.print(
            f"{len(results)} annotated images and JSON files in {escape(str(save_dir))}", highlight=False
        )


def _output_names(files: list[Path | str]) -> list[str]:
    """One file stem per image for ``--save-dir``: the image's own (a URL's last path part), made
    unique with ``-2``, ``-3``, ... when two images share a name."""
    from urllib.parse import urlparse

    from nasforge.data._pipeline import is_url

    names: list[str] = []
    seen: dict[str, int] = {}
    for f in files:
        stem = Path(urlparse(str(f)).path).stem if is_url(f) else Path(f).stem
        stem = stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def _write(path: Path, text: str) -> None:
    """Write one output file, its directory created (checked writable before the work)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
