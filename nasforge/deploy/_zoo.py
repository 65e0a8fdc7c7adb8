"""What ``nasforge zoo`` lists: one summary per installed zoo model, read from its file."""

from __future__ import annotations

from typing import Any

from nasforge import zoo
from nasforge.deploy._model import load

__all__ = ["zoo_summaries"]


def zoo_summaries() -> list[dict[str, Any]]:
    """Every installed zoo model (:func:`nasforge.zoo.entries`) as plain data: ``name``,
    ``description``, ``dataset``, ``input`` (``CxHxW``), ``classes``, ``params``, ``size_kb``,
    ``test_accuracy`` and ``architecture`` (its space's one-line description).

    Example:
        >>> [s["name"] for s in zoo_summaries()]
        ['digits-s', 'fashion-mnist-s', 'mnist-s']
    """
    rows = []
    for entry in zoo.entries():
        model = load(entry.path)
        c, h, w = model.input_shape
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "dataset": entry.dataset,
                "input": f"{c}x{h}x{w}",
                "classes": len(model.class_names),
                "params": model.metrics.get("params"),
                "size_kb": round(entry.path.stat().st_size / 1024, 1),
                "test_accuracy": model.metrics.get("test_accuracy"),
                "architecture": model.architecture.space.describe(model.architecture),
            }
        )
    return rows
