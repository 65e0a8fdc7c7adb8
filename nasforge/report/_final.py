"""The report's "Final model" section: the final training's test metrics and confusion matrix.

Read from the run's ``final.json`` (written by ``nasforge search``); runs written before the test
report existed show the accuracy alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.experiment._rundir import RunDir
from nasforge.report._plots import figure, save

__all__ = ["CONFUSION_PNG", "final_section", "plot_confusion", "read_final"]

CONFUSION_PNG = "confusion.png"


def _f(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else escape(str(value))


def read_final(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's ``final.json`` as a mapping; None without one, or when it cannot be read."""
    path = RunDir(run_dir).final if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def plot_confusion(matrix: Sequence[Sequence[int]], names: Sequence[str], path: Path) -> Path:
    """A confusion-matrix heat map, rows normalised to each true class (counts in the cells)."""
    cm = np.asarray(matrix, dtype=np.float64)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(names)
    side = min(9.0, 2.5 + 0.45 * n)
    fig = figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(
        range(n), [str(x) for x in names], rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center"
    )
    ax.set_yticks(range(n), [str(x) for x in names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Test confusion matrix (colour: share of the true class)")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                        color="white" if share[i, j] > 0.6 else "black", fontsize=8)  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return save(fig, path)


def final_section(
    run_dir: Path | None, out: Path, plot: Callable[[Path | None, str], str], kv: Callable[[Any], str]
) -> str | None:
    """HTML of the final model's test metrics, or None when the run has no final training.

    Args:
        run_dir: the run directory holding ``final.json``.
        out: where to write the confusion-matrix PNG.
        plot: the page's embedder of a PNG (records it as written).
        kv: the page's key-value table maker.
    """
    path = RunDir(run_dir).final if run_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        final = json.loads(path.read_text())
        metrics = final["final_metrics"]
    except (OSError, ValueError, KeyError, TypeError):
        return f'<p class="note">{RunDir.FINAL} could not be read.</p>'
    pairs = [
        ("trial", escape(str(final.get("trial", "")))),
        ("test accuracy", _f(metrics.get("test_accuracy"))),
        ("validation accuracy", _f(metrics.get("val_accuracy"))),
        ("parameters", f"{metrics['params']:,}" if isinstance(metrics.get("params"), int) else "n/a"),
        ("epochs", _f(metrics.get("epochs"))),
    ]
    report = final.get("test_report")
    if not isinstance(report, dict):
        return kv(pairs) + '<p class="note">This run predates per-class test metrics.</p>'
    pairs[2:2] = [
        ("test balanced accuracy", _f(report.get("balanced_accuracy"))),
        ("test macro F1", _f(report.get("f1_macro"))),
        ("test AUC", _f(report.get("auc"))),
    ]
    ratio = report.get("train_imbalance")
    if isinstance(ratio, float) and math.isfinite(ratio):
        pairs.append(("class imbalance (training)", f"largest class {ratio:.1f}x the smallest"))
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{c['precision']:.3f}</td><td>{c['recall']:.3f}</td>"
        f"<td>{c['f1']:.3f}</td><td>{c['support']:,}</td></tr>"
        for name, c in report["per_class"].items()
    )
    table = (
        '<table class="data" id="per-class"><thead><tr><th>class</th><th>precision</th><th>recall</th>'
        f"<th>F1</th><th>test images</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    png = plot_confusion(report["confusion_matrix"], report["class_names"], out / CONFUSION_PNG)
    return f'<div class="columns"><div>{kv(pairs)}</div><div>{table}</div></div>' + plot(
        png, "test confusion matrix"
    )
