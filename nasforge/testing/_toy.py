"""Small real spaces and estimators with known optima, for tests and conformance suites."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nasforge.errors import TrialFailed
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.space import Architecture, Choice, IntRange, SearchSpace

__all__ = [
    "AdditiveEstimator",
    "NumericSumRanker",
    "ToyEstimator",
    "additive_space",
    "band_image",
    "make_image_folder",
    "toy_space",
]


def toy_space() -> SearchSpace:
    """30 points: ``a`` in 0..4, ``b`` in x/y/z, ``c`` a bool; ``d`` is active only when ``c``."""

    class Toy(SearchSpace):
        name = "toy"

        def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
            return name != "d" or bool(params["c"])

    return Toy(
        {"a": IntRange(0, 4), "b": Choice(["x", "y", "z"]), "c": Choice([False, True]), "d": Choice([0, 1])}
    )


class ToyEstimator(Estimator):
    """``score = a + 2 * (b == "z") + c + d``: unique optimum a=4, b=z, c=True, d=1 with score 8.

    Args:
        fail_when: architectures whose ``a`` equals this value raise (to test failure handling).
        report_steps: if set, report ``score * step / report_steps`` at steps 1 .. report_steps
            first (a learning curve that ranks architectures like the final score), so that
            schedulers can stop trials.
    """

    def __init__(self, fail_when: int | None = None, report_steps: int | None = None) -> None:
        self.fail_when = fail_when
        self.report_steps = report_steps
        self.calls = 0

    @property
    def max_step(self) -> int | None:  # type: ignore[override]
        return self.report_steps

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        self.calls += 1
        p = arch.params
        if self.fail_when is not None and p["a"] == self.fail_when:
            raise TrialFailed(f"planted failure for a={p['a']}")
        score = p["a"] + 2 * (p["b"] == "z") + int(p["c"]) + p.get("d", 0)
        for step in range(1, (self.report_steps or 0) + 1):
            ctx.report(step, score * step / self.report_steps, {"steps": step})
        return {"score": score}


def additive_space(dims: int = 8, values: int = 5) -> SearchSpace:
    """``dims`` independent choices of ``values`` integers each (``values ** dims`` points)."""
    return SearchSpace({f"x{i}": Choice(list(range(values))) for i in range(dims)})


class AdditiveEstimator(Estimator):
    """``score = sum of the values``: optimum at every dimension's largest value."""

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        return {"score": float(sum(arch.params.values()))}


def run_additive(strategy: Any, seed: int, n: int, space: SearchSpace | None = None) -> Any:
    """Run ``strategy`` for ``n`` trials on :func:`additive_space` (or ``space``); return the Experiment."""
    from nasforge.experiment import Experiment

    exp = Experiment("additive", space=space or additive_space(), objectives=["score"], seed=seed)
    return exp.run(strategy, AdditiveEstimator(), n_trials=n)


def best_on_additive(strategy: Any, seed: int, n: int = 100) -> float:
    """The best score ``strategy`` reaches in ``n`` trials on :func:`additive_space` (optimum 32)."""
    best = run_additive(strategy, seed, n).best()
    if best is None or best.value is None:
        raise AssertionError("no trial completed")
    return best.value


class NumericSumRanker:
    """A cheap stand-in for zero-cost proxies on spaces that build no network (toy, additive).

    Scores each architecture by the sum of its numeric (and boolean) parameter values: a proxy that
    agrees with :class:`ToyEstimator` and :class:`AdditiveEstimator` only partly (it ignores the
    toy space's ``b``), as real proxies do. Counts its calls in ``scored``.
    """

    def __init__(self) -> None:
        self.scored = 0

    def rank(self, archs: Sequence[Architecture]) -> np.ndarray:
        self.scored += len(archs)
        return np.array(
            [float(sum(v for v in a.params.values() if isinstance(v, int | float))) for a in archs]
        )


def make_image_folder(
    root: Any,
    classes: Sequence[str] = ("circle", "square", "stripe"),
    *,
    per_class: int = 10,
    size: int = 12,
    seed: int = 0,
) -> Any:
    """Write a small, learnable image-folder dataset (``root/<class>/<i>.png``, grey PNGs); returns root.

    Class ``c``'s images are noise with a bright vertical band in the ``c``-th part of the picture,
    so a small CNN learns them in a few epochs.
    """
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(band_image(c, len(classes), rng, size)).save(root / name / f"{i}.png")
    return root


def band_image(c: int, n_classes: int, rng: np.random.Generator, size: int = 12) -> np.ndarray:
    """One grey uint8 image of class ``c`` for :func:`make_image_folder`."""
    a = rng.integers(0, 60, (size, size)).astype(np.uint8)
    width = size // n_classes
    a[:, c * width : (c + 1) * width] += 180
    return a
