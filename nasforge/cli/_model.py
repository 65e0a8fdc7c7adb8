"""``nasforge train``, ``export``, ``profile`` and ``zoo``: make and use a model (predict: ``_predict``)."""

from __future__ import annotations

import inspect
import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasforge._paths import check_writable_file
from nasforge.cli._app import DEVICE_HELP, out, recipe_help, user_errors
from nasforge.cli._progress import Reporter
from nasforge.cli._tables import epoch_text, final_scores, fitted_table, fmt, print_test_report
from nasforge.deploy._source import TrainHooks
from nasforge.errors import ConfigError
from nasforge.estimate import train_detector, train_final

__all__ = ["export", "profile", "train", "zoo"]

#: ``nasforge train``'s defaults are :func:`nasforge.estimate.train_final`'s, and for a detector
#: :func:`nasforge.estimate.train_detector`'s
_TRAIN = {name: p.default for name, p in inspect.signature(train_final).parameters.items()}
_DETECT = {name: p.default for name, p in inspect.signature(train_detector).parameters.items()}


def train(
    source: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory, an architecture JSON (best_architecture.json), a .nasforge model "
            "or a zoo model name (its architecture is trained from scratch)."
        ),
    ] = None,
    from_model: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Fine-tune this .nasforge model or zoo model (its weights) on --dataset instead.",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset (default: the run's, or the model's).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download missing dataset files (mnist, fashion-mnist).")
    ] = False,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="Training epochs (the most, with --tune).")
    ] = _TRAIN["epochs"],
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")] = _TRAIN["lr"],
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help=f"Images per step [default: {_TRAIN['batch_size']}; "
            f"{_DETECT['batch_size']} for a detector].",
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(
            "--weight-decay",
            min=0.0,
            help=f"[default: {_TRAIN['weight_decay']}; {_DETECT['weight_decay']} for a detector (AdamW)].",
        ),
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            "--optimizer",
            help=f"adam, adamw or sgd [default: {_TRAIN['optimizer']}; a detector always trains with AdamW "
            "and a one-cycle learning rate].",
        ),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            "--augment",
            help="auto (the recipe for the data's final training: "
            f"{recipe_help('augment', 'final')}; with its warm-up: {recipe_help('warmup', 'final')} "
            "epochs), none, shift, or shift+flip (natural images only; not for detectors) "
            f"[default: {_TRAIN['augment']}].",
        ),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(
            "--label-smoothing",
            metavar="X",
            help="Label smoothing in [0, 1) [default: the recipe for the data: "
            f"{recipe_help('label_smoothing', 'final')}; not for detectors].",
        ),
    ] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            "--patience", min=1, help="Early stopping: epochs without a better validation accuracy."
        ),
    ] = None,
    tune: Annotated[
        int,
        typer.Option(
            "--tune",
            min=0,
            help="Tune lr, weight decay, batch size and epochs with this many Optuna TPE trials first "
            "(on validation accuracy; hyperparameters, not the architecture).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed")] = _TRAIN["seed"],
    class_names: Annotated[
        str | None,
        typer.Option(
            "--class-names",
            metavar="A,B,C|FILE",
            help="Names of the classes, in label order: comma-separated, or a text file with one per "
            "line (default: the data's, or the run's class_names).",
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output .nasforge file, replaced if it exists (default: RUN/trained.nasforge, "
            "ARCH-trained.nasforge or MODEL-DATASET.nasforge; an existing one is kept and the new "
            "model gets the next free name, trained-2.nasforge, ...).",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    amp: Annotated[
        str,
        typer.Option(
            "--amp", help="Mixed precision: auto (bf16 on a GPU that has it, else off), off, bf16, fp16."
        ),
    ] = "auto",
) -> None:
    """Train one architecture with the full budget and save it as a .nasforge model.

    Give a run directory (its best architecture and dataset), an architecture JSON, or a model;
    with --from, the model's weights are the starting point (transfer learning: new classes or
    input channels get fresh layers, every matching layer keeps its weights). A detection run or
    detector file trains a detector on its detection dataset (train_detector: AdamW, one-cycle
    learning rate, on the CPU; --tune, --patience, --augment, --label-smoothing, --optimizer and
    --from are for classifiers).
    """
    with user_errors():
        from nasforge._device import check_device_and_amp
        from nasforge.config import parse_class_names
        from nasforge.deploy._source import resolve_source, train_from_source

        check_device_and_amp(device, amp)  # before any data is loaded
        src = resolve_source(
            source,
            from_model=from_model,
            dataset=dataset,
            data_dir=data_dir,
            download=download,
            class_names=parse_class_names(class_names) if class_names is not None else None,
            out=out_path,
            seed=seed,
        )
        progress = Reporter(out)
        with progress:
            done = train_from_source(
                src,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                weight_decay=weight_decay,
                optimizer=optimizer,
                augment=augment,
                label_smoothing=label_smoothing,
                patience=patience,
                tune=tune,
                seed=seed,
                device=device,
                amp=amp,
                hooks=_TrainProgress(progress),
            )
        m = done.model.metrics
        moved = f", {m['transferred']} weight tensors from {from_model}" if from_model is not None else ""
        kept = f" ({src.kept.name} exists and was kept)" if src.kept is not None else ""
        scores = final_scores(m, bold=False, val="validation")
        out.print(
            f"trained {m['epochs']} epochs on {src.task.name}{moved}: {scores}, "
            f"{m['params']:,} parameters -> {escape(str(src.out_path))}{escape(kept)}",
            highlight=False,
            soft_wrap=True,
        )
        print_test_report(getattr(done.model, "test_report", None))  # a detector has none


class _TrainProgress(TrainHooks):
    """Tuning trials and training epochs as bars (terminal) or lines (log)."""

    def __init__(self, progress: Reporter) -> None:
        self.progress = progress

    def on_tune_start(self, n_trials: int, max_epochs: int) -> None:
        self.progress.note(
            f"tuning training hyperparameters: {n_trials} TPE trials of up to {max_epochs} epochs"
        )
        self.progress.stage("tune", "tuning trials", n_trials, unit="trial")

    def on_tune_trial(self, done: int, n_trials: int, row: Mapping[str, Any]) -> None:
        acc = row.get("val_accuracy", math.nan)
        self.progress.update("tune", done, f"val accuracy {acc:.4f}" if math.isfinite(acc) else "failed")

    def on_tuned(self, result: Any) -> None:
        best = ", ".join(f"{k}={fmt(v)}" for k, v in result.best.items())
        self.progress.note(escape(f"best: {best} (validation accuracy {result.best_val_accuracy:.4f})"))

    def on_train_start(self, epochs: int) -> None:
        self.progress.stage("train", "training epochs", epochs, unit="epoch")

    def on_epoch(self, epoch: int, epochs: int, record: Mapping[str, Any]) -> None:
        self.progress.update("train", epoch, epoch_text(record))


def export(
    model: Annotated[Path, typer.Argument(help="A .nasforge model file or a zoo model name.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="onnx (fp32, dynamic batch), int8 (static QDQ ONNX), torchscript."
        ),
    ] = "onnx",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Output file (default: next to the model, .onnx / .int8.onnx / .pt)."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Dataset for INT8 calibration (training images) and the accuracy check (test images); "
            "default for int8: the one the model was trained on.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool,
        typer.Option("--download", help="Download missing files of --dataset (mnist, fashion-mnist)."),
    ] = False,
    calibration: Annotated[
        int, typer.Option("--calibration", min=1, help="Calibration images (int8).")
    ] = 512,
    max_map_drop: Annotated[
        float | None,
        typer.Option(
            "--max-map-drop",
            min=0.0,
            help="Detectors, int8: fail (exit 2, file removed) when the INT8 model's test mAP is lower "
            "than PyTorch's by more than this (default: report it, warn above 0.05).",
        ),
    ] = None,
) -> None:
    """Export a model for deployment (ONNX, INT8 ONNX, TorchScript), checked against PyTorch.

    The check reports the largest logit difference and the top-1 agreement, and with a dataset
    the accuracy of both models. The exported graph takes raw pixels (N, C, H, W) in [0, 1]; the
    normalisation is inside it.

    A detector (onnx or int8) exports its fused network's heatmap, size and offset maps; decoding
    stays in Python (nasforge.deploy.OnnxDetector runs the file). Its check compares the decoded
    boxes (share matched at IoU>=0.5, largest coordinate difference) and with test data both
    models' mAP; INT8 calibrates on the detector's dataset, or --dataset yolo|coco|... --data-dir,
    or unlabelled images with --dataset folder --data-dir DIR.
    """
    with user_errors():
        from nasforge.deploy import FORMATS, ExportQualityWarning, calibration_images, load
        from nasforge.deploy import export as do_export

        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        loaded = load(model)
        suffix = {"onnx": ".onnx", "int8": ".int8.onnx", "torchscript": ".pt"}[fmt]
        target = out_path or model.with_name(model.name.removesuffix(model.suffix) + suffix)
        check_writable_file(target, what="export file", hint="give another --out")
        options: dict[str, Any] = {}
        if dataset is not None or fmt == "int8":  # INT8 calibrates on the model's data by default
            options = calibration_images(loaded, dataset, data_dir, download=download, n=calibration)
        if max_map_drop is not None:
            options["max_map_drop"] = max_map_drop
        with warnings.catch_warnings():  # the report says it on its last line
            warnings.simplefilter("ignore", ExportQualityWarning)
            report = do_export(loaded, target, format=fmt, **options)
        out.print(escape(str(report)), highlight=False, soft_wrap=True)


def profile(
    model: Annotated[Path, typer.Argument(help="A .nasforge model file or a zoo model name.")],
    batch: Annotated[
        list[int] | None, typer.Option("--batch", min=1, help="Batch size(s) to time (repeatable).")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Intra-op threads, fixed.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", min=2, help="Timed calls per measurement.")] = 50,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed calls first.")] = 10,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also time the INT8 ONNX model (calibrated on --dataset).")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Calibration data for --int8 (default: the model's dataset)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where that dataset's files are.")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Download missing files of --dataset (mnist, fashion-mnist).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="Also time PyTorch eager on this GPU (cuda, cuda:N, mps; auto: a GPU if there is "
            "one), labelled torch_cuda (synchronised timing); cpu (default): CPU only.",
        ),
    ] = "cpu",
) -> None:
    """Measure a model on this machine: parameters, FLOPs, peak activation memory and latency.

    A detector is measured on its network's forward pass (the exported heatmap, size and offset
    maps; decoding and NMS are not timed).

    Latency is timed for PyTorch eager and ONNX Runtime fp32 (and INT8 with --int8), at each
    --batch, with --threads threads: --warmup untimed calls, then --repeats timed calls; the median
    is the figure, p10 / p90 and the coefficient of variation show the spread. A detector file is
    timed in PyTorch eager only (its network, without box decoding) until detectors export to ONNX.
    """
    with user_errors():
        from nasforge.deploy import profile_model

        result = profile_model(
            model,
            batches=batch or [1],
            threads=threads,
            repeats=repeats,
            warmup=warmup,
            int8=int8,
            dataset=dataset,
            data_dir=data_dir,
            download=download,
            device=device,
        )
        if as_json:
            out.print_json(json.dumps(result.to_dict()))
            return
        out.print(
            f"{model}: {result.params:,} parameters, {result.flops / 1e6:.2f} MFLOPs, peak activations "
            f"{result.peak_activation_bytes / 1024:.1f} KB (batch 1, float32); {threads} thread(s)",
            highlight=False,
        )
        table = Table(title=f"latency, ms per call ({repeats} timed runs after {warmup} warm-up)")
        for col in ("runtime", "batch", "median", "p10", "p90", "CV"):
            table.add_column(col, justify="left" if col == "runtime" else "right")
        for r in result.latency:
            table.add_row(
                r["runtime"],
                str(r["batch_size"]),
                f"{r['median_ms']:.3f}",
                f"{r['p10_ms']:.3f}",
                f"{r['p90_ms']:.3f}",
                f"{r['cv']:.1%}",
            )
        out.print(table)
        if result.gpu is not None:
            gpu = result.gpu
            out.print(
                f"{result.latency[-1]['runtime']} ran on {gpu['device']} ({gpu['device_name']}), "
                "synchronised after every call: a GPU latency, not comparable with the CPU rows",
                highlight=False,
            )


def zoo(
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
) -> None:
    """List the pre-searched models shipped with nasforge; load one by name.

    Each was found by a nasforge search and trained by nasforge (benchmarks/build_zoo.py rebuilds
    them). Use a name wherever a model file goes: `nasforge predict fashion-mnist-s shoe.png`,
    `nasforge train --from fashion-mnist-s --dataset mnist`, or `nasforge.load("fashion-mnist-s")`.
    """
    with user_errors():
        from nasforge.deploy import zoo_summaries

        rows = zoo_summaries()
        if as_json:
            out.print_json(json.dumps(rows))
            return
        if not rows:
            out.print("no zoo models are installed")
            return
        columns = [
            ("name", 0),
            ("dataset", 3),  # the name says it, and --json has it: left out first when narrow
            ("input", 1),
            ("classes", 2),
            ("params", 0),
            ("size", 0),
            ("test acc", 0),
            ("architecture", 0),
        ]
        cells = []
        for r in rows:
            acc = r["test_accuracy"]
            cells.append(
                [
                    str(r["name"]),
                    str(r["dataset"]),
                    str(r["input"]),
                    str(r["classes"]),
                    f"{r['params']:,}" if isinstance(r["params"], int) else "?",
                    f"{r['size_kb']:.0f} KB",
                    f"{acc:.2%}" if isinstance(acc, float) else "?",
                    str(r["architecture"]),
                ]
            )
        table = fitted_table(
            "nasforge model zoo (load by name: nasforge.load('NAME'))", columns, cells, out.width, left=3
        )
        out.print(table)
