"""The model zoo: small models searched and trained by nasforge itself, shipped with the package.

Each entry ``NAME`` is two files in this directory: ``NAME.nasforge`` (the model: architecture,
weights, preprocessing, class names, test metrics and provenance) and ``NAME.yaml`` (a one-line
description and the exact ``nasforge search`` config that found and trained it).
``benchmarks/build_zoo.py`` rebuilds every entry from scratch.

Example:
    >>> import nasforge as nf
    >>> [e.name for e in nf.zoo.entries()]
    ['digits-s', 'fashion-mnist-s', 'mnist-s']
    >>> model = nf.load("fashion-mnist-s")  # doctest: +SKIP
    >>> model("shoe.png")[0].top1  # doctest: +SKIP
    'Ankle boot'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ZOO_DIR", "ZooEntry", "entries", "get", "path_of"]

ZOO_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model.

    Attributes:
        name: what :func:`nasforge.load` accepts, e.g. ``"fashion-mnist-s"``.
        description: one line on what it recognises.
        path: the ``.nasforge`` file.
        config: the ``nasforge search`` config that produced it (as read from ``NAME.yaml``).
    """

    name: str
    description: str
    path: Path
    config: dict[str, Any]

    @property
    def dataset(self) -> str:
        data = self.config.get("data") or {}
        return str(data.get("name", "?")) if isinstance(data, dict) else str(data)


def entries() -> list[ZooEntry]:
    """Every zoo model shipped with this installation, by name."""
    found = []
    for spec_path in sorted(ZOO_DIR.glob("*.yaml")):
        name = spec_path.stem
        model_path = ZOO_DIR / f"{name}.nasforge"
        if not model_path.is_file():
            continue  # a config whose model was never built
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        found.append(
            ZooEntry(
                name=name,
                description=str(spec.get("description", "")),
                path=model_path,
                config=dict(spec.get("search") or {}),
            )
        )
    return found


def get(name: str) -> ZooEntry | None:
    """The zoo entry called ``name``, or None."""
    return next((e for e in entries() if e.name == name), None)


def path_of(name: str) -> Path | None:
    """The ``.nasforge`` file of zoo model ``name``, or None when there is no such model."""
    entry = get(name)
    return entry.path if entry is not None else None
