"""Classification metrics for real users: accuracy alone hides what a medical or imbalanced set needs.

:func:`classification_metrics` turns labels and predicted class probabilities into accuracy,
balanced accuracy, macro F1, ROC AUC (one-vs-rest, macro, for more than two classes), per-class
precision / recall / F1 / support and the confusion matrix, in plain numpy (checked against
scikit-learn in the tests). :func:`predict_proba` gets the probabilities from a network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported on first use, so that `import nasforge` stays light
    from torch import Tensor, nn

    from nasforge.data import Task

__all__ = [
    "SELECTION_METRICS",
    "classification_metrics",
    "imbalance",
    "predict_proba",
    "roc_auc",
    "summary_lines",
    "validation_metrics",
]

#: Metrics a search or a final race may select by (all: higher is better).
SELECTION_METRICS = ("accuracy", "balanced_accuracy", "auc", "f1_macro")


def predict_proba(model: nn.Module, x: Tensor, *, batch_size: int = 1024) -> np.ndarray:
    """Softmax probabilities of ``model`` on ``x`` as a float64 array ``(samples, classes)``.

    The model is switched to eval mode and left there; gradients are off.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size=}")
    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size]).float()
            parts.append(torch.softmax(logits, dim=1).cpu().double().numpy())
    if not parts:
        return np.zeros((0, 0))
    return np.concatenate(parts)


def validation_metrics(model: nn.Module, task: Task, *, proba: np.ndarray | None = None) -> dict[str, float]:
    """``val_balanced_accuracy``, ``val_f1_macro`` and ``val_auc`` of a trained network on the task's
    validation split (one forward pass; model and task on the same device); empty without
    validation images. A search selects by them (``--metric``), and so does a final race.

    ``proba``: the network's class probabilities on the validation images, when the training
    loop's last validation pass already computed them (``fit(val_proba=True)``): then no
    forward pass is run.
    """
    if len(task.x_val) == 0:
        return {}
    if proba is None:
        proba = predict_proba(model, task.x_val)
    report = classification_metrics(task.y_val.cpu().numpy(), proba)
    return {f"val_{k}": report[k] for k in ("balanced_accuracy", "f1_macro", "auc")}


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula; ties count one half."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size, dtype=np.float64)
    sorted_scores = score[order]
    # average ranks over tied scores
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [score.size]))
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0  # mean of the 1-based ranks s+1 .. e
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC: for two classes that of class 1's probability; for more, the unweighted mean of the
    one-vs-rest AUCs of the classes present in ``y_true`` (scikit-learn's ``multi_class="ovr"``,
    ``average="macro"``). NaN where only one class is present."""
    y_true = np.asarray(y_true)
    classes = proba.shape[1]
    if classes == 2:
        return _binary_auc(y_true == 1, proba[:, 1])
    aucs = [_binary_auc(y_true == c, proba[:, c]) for c in range(classes) if (y_true == c).any()]
    aucs = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(aucs)) if aucs else math.nan


def imbalance(counts: Sequence[int]) -> float:
    """Largest class count over the smallest non-empty one (1.0 = balanced, inf if a class is empty)."""
    arr = np.asarray(counts, dtype=np.float64)
    if arr.size == 0 or arr.max() == 0:
        return math.nan
    return math.inf if arr.min() == 0 else float(arr.max() / arr.min())


def classification_metrics(
    y_true: np.ndarray | Sequence[int], proba: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Every metric a user of a classifier looks at, from labels and predicted probabilities.

    Args:
        y_true: integer labels ``(samples,)`` in ``0 .. classes - 1``.
        proba: predicted class probabilities (or any scores whose arg-max is the prediction)
            ``(samples, classes)``.
        class_names: one name per class; default ``"0"``, ``"1"``, ...

    Returns:
        ``accuracy``, ``balanced_accuracy`` (mean recall over the classes present), ``f1_macro``
        (over every class, 0 for a class never predicted nor present, as scikit-learn's
        ``zero_division=0``), ``auc``, ``per_class`` (name → precision, recall, f1, support),
        ``confusion_matrix`` (rows: true class, columns: predicted), ``class_names`` and
        ``samples``.

    Raises:
        DataError: if the shapes do not fit or a label is out of range.

    Example:
        >>> m = classification_metrics([0, 0, 1, 1], np.array([[.9, .1], [.4, .6], [.3, .7], [.2, .8]]))
        >>> m["accuracy"], m["balanced_accuracy"], m["auc"], m["confusion_matrix"]
        (0.75, 0.75, 1.0, [[1, 1], [0, 2]])
    """
    y = np.asarray(y_true).astype(np.int64).reshape(-1)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != y.size:
        raise DataError(
            f"need probabilities of shape (samples, classes) for {y.size} labels, got {proba.shape}"
        )
    classes = proba.shape[1]
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"labels must lie in 0..{classes - 1}, got {int(y.min())}..{int(y.max())}")
    names = [str(n) for n in class_names] if class_names is not None else [str(c) for c in range(classes)]
    if len(names) != classes:
        raise DataError(f"{len(names)} class names for {classes} classes")
    pred = proba.argmax(axis=1) if y.size else np.zeros(0, dtype=np.int64)
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    n = y.size
    return {
        "accuracy": float(tp.sum() / n) if n else math.nan,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else math.nan,
        "f1_macro": float(f1.mean()) if classes else math.nan,
        "auc": roc_auc(y, proba) if n else math.nan,
        "per_class": {
            name: {
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "support": int(support[c]),
            }
            for c, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "class_names": names,
        "samples": int(n),
    }


def summary_lines(report: dict[str, Any], *, max_classes: int = 5) -> list[str]:
    """A few plain lines that say what accuracy alone hides: balanced accuracy, macro F1, AUC,
    each class's recall and precision (the weakest class when there are many), and imbalance.

    Example:
        >>> r = classification_metrics([0, 0, 0, 1], np.array([[.9, .1], [.4, .6], [.8, .2], [.2, .8]]),
        ...                            ["normal", "pneumonia"])
        >>> r["train_imbalance"] = 3.0
        >>> for line in summary_lines(r):
        ...     print(line[:72])
        test: balanced accuracy 0.8333, macro F1 0.7333, AUC 1.0000
        recall / precision per class: normal 0.667 / 1.000, pneumonia 1.000 / 0.
        classes are imbalanced (training split: largest 3.0x the smallest): accu
    """

    def f(x: Any) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    lines = [
        f"test: balanced accuracy {f(report['balanced_accuracy'])}, macro F1 {f(report['f1_macro'])}, "
        f"AUC {f(report['auc'])}"
    ]
    per_class = report["per_class"]
    if len(per_class) <= max_classes:
        lines.append(
            "recall / precision per class: "
            + ", ".join(f"{n} {c['recall']:.3f} / {c['precision']:.3f}" for n, c in per_class.items())
        )
    else:
        name, worst = min(per_class.items(), key=lambda kv: kv[1]["recall"])
        lines.append(
            f"weakest class: {name}, recall {worst['recall']:.3f}, precision {worst['precision']:.3f}"
        )
    ratio = report.get("train_imbalance")
    if isinstance(ratio, float) and not math.isnan(ratio) and ratio >= 1.5:
        lines.append(
            f"classes are imbalanced (training split: largest {ratio:.1f}x the smallest): accuracy favours "
            "the large classes; look at balanced accuracy and the per-class recall"
        )
    return lines
