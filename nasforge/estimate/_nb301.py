"""The NAS-Bench-301 surrogate (YAHPO Gym ``nb301`` v2 ONNX model) as an estimator.

The model maps a DARTS architecture and a training epoch (1..98) to the predicted CIFAR-10
validation accuracy, cross-entropy and cumulative training time. Files read from
``<root>/nb301-yahpo/``: ``model_v2.onnx`` and ``encoding_v2.json``.

Output columns of the ONNX model, in order (YAHPO Gym ``v2_final``): ``val_accuracy`` (0-1),
``val_cross_entropy``, ``runtime`` (cumulative seconds up to the epoch), ``runtime_increase``.
The PyPI yahpo-gym 1.0.2 labels only the first two, calling column 1 "runtime"; it is not: the
runtime is column 2 (see :data:`OUTPUTS`).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._benchdir import bench_file
from nasforge.errors import ConfigError, DataError, SpaceError, TrialFailed
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.space._darts import CONFIGSPACE_PREFIX

if TYPE_CHECKING:
    from nasforge.space import Architecture

__all__ = ["CAT_NAMES", "OUTPUTS", "NB301Surrogate"]

SUBDIR = "nb301-yahpo"
MODEL_FILE = "model_v2.onnx"
ENCODING_FILE = "encoding_v2.json"
MAX_EPOCH = 98
#: The model's output columns, in order.
OUTPUTS = ("val_accuracy", "val_cross_entropy", "runtime", "runtime_increase")
#: The model's ``x_cat`` columns (short DartsSpace names; the ConfigSpace adds a common prefix).
CAT_NAMES = (
    *(f"edge_normal_{i}" for i in range(14)),
    *(f"edge_reduce_{i}" for i in range(14)),
    *(f"inputs_node_normal_{n}" for n in (3, 4, 5)),
    *(f"inputs_node_reduce_{n}" for n in (3, 4, 5)),
)
_INSTALL_HINT = (
    "the NAS-Bench-301 surrogate needs onnxruntime: pip install onnxruntime (a nasforge dependency)"
)


def _check_epoch(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_EPOCH:
        raise ConfigError(f"{what} must be an integer between 1 and {MAX_EPOCH}, got {value!r}")
    return int(value)


class NB301Surrogate(Estimator):
    """Predicted accuracy of a :class:`~nasforge.space._darts.DartsSpace` architecture (NAS-Bench-301).

    Metrics returned: ``val_accuracy`` (0-1), ``val_cross_entropy``, ``runtime`` (simulated training
    seconds up to ``epoch``), ``sim_seconds`` (the same: the simulated cost of the query, used by
    time budgets) and ``epoch``. With ``report_epochs``, the predicted validation accuracy at those
    epochs (below ``epoch``) is reported first through ``ctx.report(epoch, val_accuracy)``, so a
    scheduler can stop the trial early (:class:`~nasforge.errors.TrialPruned` propagates); the
    epochs at which the experiment's scheduler decides (``ctx.milestones``) are reported too. A
    trial stopped at epoch ``e`` is recorded with the metrics at ``e``: its simulated cost is the
    runtime up to ``e``.

    The ONNX session is created on first use (one thread: single-row predictions are fastest that
    way), and is not pickled, so an estimator can be sent to worker processes.

    Args:
        root: the benchmarks directory holding ``nb301-yahpo/``; default: ``NASFORGE_BENCH_DIR``.
        epoch: the training epoch (fidelity) whose prediction is returned, 1..98.
        report_epochs: epochs at which to report intermediate accuracies (those >= ``epoch`` are
            ignored).

    Raises:
        ConfigError: bad ``epoch`` or ``report_epochs``.
        DataError: the model or encoding file is missing.

    Example:
        >>> import numpy as np
        >>> from nasforge.space._darts import DartsSpace
        >>> est = NB301Surrogate("../shared/benchmarks")  # doctest: +SKIP
        >>> est.predict([DartsSpace().sample(np.random.default_rng(0))], epoch=98)[:, 0]  # doctest: +SKIP
        array([0.92...], dtype=float32)
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        epoch: int = MAX_EPOCH,
        report_epochs: Sequence[int] | None = None,
    ) -> None:
        self.root = root
        self.epoch = _check_epoch(epoch, "epoch")
        if report_epochs is not None and (
            isinstance(report_epochs, (str, bytes)) or not isinstance(report_epochs, Sequence)
        ):
            raise ConfigError(f"report_epochs must be a list of epochs, got {report_epochs!r}")
        self.report_epochs = report_epochs
        self._report = sorted(
            {_check_epoch(e, "report_epochs entries") for e in (report_epochs or ())} - {self.epoch}
        )
        self._report = [e for e in self._report if e < self.epoch]
        self.directory = self._locate(root)
        self._session: Any = None
        self._codes: list[dict[str, int]] | None = None

    @staticmethod
    def _locate(root: str | Path | None) -> Path:
        model = bench_file(root, SUBDIR, MODEL_FILE)
        if not (model.parent / ENCODING_FILE).is_file():
            raise DataError(
                f"NAS-Bench-301 file {model.parent / ENCODING_FILE} is missing; it ships with "
                f"{MODEL_FILE} in {SUBDIR}/ of the benchmarks directory"
            )
        return model.parent

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    # ------------------------------------------------------------------ loading
    def _load(self) -> Any:
        if self._session is None:
            try:  # imported by name: onnxruntime ships no type information
                ort = importlib.import_module("onnxruntime")
            except ImportError as exc:
                raise ImportError(_INSTALL_HINT) from exc

            try:
                encoding = json.loads((self.directory / ENCODING_FILE).read_text())
                self._codes = [dict(encoding[CONFIGSPACE_PREFIX + name]) for name in CAT_NAMES]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{self.directory / ENCODING_FILE} is not a NAS-Bench-301 encoding: {exc}"
                ) from None
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            try:
                self._session = ort.InferenceSession(
                    str(self.directory / MODEL_FILE), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise DataError(f"cannot load {self.directory / MODEL_FILE}: {exc}") from None
        return self._session

    # ------------------------------------------------------------------ encoding / prediction
    def encode(self, arch: Architecture) -> np.ndarray:
        """The model's ``x_cat`` row (int32, 34 values) of ``arch``; inactive values encode as 0 (``#na#``).

        Raises:
            SpaceError: ``arch`` is not a DARTS-space architecture.
        """
        self._load()
        assert self._codes is not None
        params = arch.params
        if "edge_normal_0" not in params or "inputs_node_reduce_5" not in params:
            raise SpaceError(
                "NB301Surrogate evaluates architectures of the 'darts' space (DartsSpace), "
                f"got one of space '{arch.space.name}'"
            )
        row = np.zeros(len(CAT_NAMES), dtype=np.int32)
        for col, (name, codes) in enumerate(zip(CAT_NAMES, self._codes, strict=True)):
            value = params.get(name)
            if value is not None:
                code = codes.get(value)
                if code is None:
                    raise SpaceError(
                        f"NAS-Bench-301 has no value {value!r} for {name}; valid: {sorted(codes)}"
                    )
                row[col] = code
        return row

    def predict(
        self, archs: Sequence[Architecture], epoch: int | Sequence[int] | np.ndarray = MAX_EPOCH
    ) -> np.ndarray:
        """Raw surrogate outputs for many architectures in one call.

        Args:
            archs: DARTS-space architectures.
            epoch: one epoch for all, or one per architecture (1..98).

        Returns:
            float32 array ``[len(archs), 4]`` with columns :data:`OUTPUTS`
            (val_accuracy, val_cross_entropy, runtime, runtime_increase).
        """
        session = self._load()
        if len(archs) == 0:
            return np.zeros((0, len(OUTPUTS)), dtype=np.float32)
        x_cat = np.stack([self.encode(a) for a in archs])
        epochs = np.broadcast_to(np.asarray(epoch), (len(archs),))
        for e in np.unique(epochs):
            _check_epoch(e.item() if isinstance(e, np.generic) else e, "epoch")
        x_cont = epochs.astype(np.float32).reshape(-1, 1)
        out: np.ndarray = session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]
        return out

    @property
    def max_step(self) -> int:  # type: ignore[override]
        """The full budget in reported steps: ``epoch``."""
        return self.epoch

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        session = self._load()
        report = sorted({*self._report, *ctx.milestones(self.epoch)})
        epochs = [*report, self.epoch]
        x_cat = np.repeat(self.encode(arch)[None, :], len(epochs), axis=0)
        x_cont = np.asarray(epochs, dtype=np.float32).reshape(-1, 1)
        out = session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]
        rows = [self._metrics(e, row) for e, row in zip(epochs, out, strict=True)]
        for e, metrics in zip(report, rows, strict=False):
            ctx.report(e, metrics["val_accuracy"], metrics)  # a stop here costs the runtime so far
        return rows[-1]

    @staticmethod
    def _metrics(epoch: int, row: np.ndarray) -> dict[str, Any]:
        runtime = float(row[2])  # column 2, not 1: see the module docstring
        metrics = {
            "val_accuracy": float(row[0]),
            "val_cross_entropy": float(row[1]),
            "runtime": runtime,
            "sim_seconds": runtime,
            "epoch": epoch,
        }
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrialFailed(f"the NAS-Bench-301 surrogate returned non-finite outputs {metrics}")
        return metrics
