"""Tabular benchmarks as estimators: NAS-Bench-201 (CIFAR-10) and NAS-Bench-Macro.

A table estimator answers a query with a dictionary lookup instead of training, so strategies can
be compared in seconds (``nasforge bench``). Tables are read once per file and process (a
module-level cache) into numpy arrays; pickling an estimator (process executors) leaves the table
behind and the copy reloads it from its path.

The tables live in the benchmarks directory (``--bench-dir`` / ``NASFORGE_BENCH_DIR``, see
:func:`nasforge.bench.bench_root`)::

    <root>/nb201/nb201_cifar10.csv
    <root>/nas-bench-macro/nas-bench-macro_cifar10.json
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._benchdir import bench_file
from nasforge.errors import ConfigError, DataError, SpaceError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.registry import suggest
from nasforge.space._nb201 import EDGE_NAMES, NB201_OPS, nb201_ops, parse_arch_str

if TYPE_CHECKING:
    from nasforge.space import Architecture

__all__ = ["MacroTable", "NB201Data", "NB201Table"]

NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NB201_METRICS = ("valid_acc_12ep", "test_acc", "test_acc_nb201_old")
_NB201_FLOATS = (
    "test_acc",
    "test_acc_nb201_old",
    "valid_acc_12ep",
    "train_time_12ep_s",
    "params_M",
    "flops_M",
)
_EVAL_KEYS = ("valid_acc_12ep", "test_acc", "train_time_12ep_s", "params_M", "flops_M")
_POW5 = 5 ** np.arange(6)

_lock = threading.Lock()
_cache: dict[tuple[str, Path], Any] = {}


def _cached(kind: str, path: Path, load: Any) -> Any:
    key = (kind, path)
    with _lock:
        if key not in _cache:
            _cache[key] = load(path)
        return _cache[key]


def _ops_code(ops: np.ndarray) -> np.ndarray:
    """Base-5 code of six operation indices (last axis), a dense index into 5**6 cells."""
    return np.asarray(ops, dtype=np.int64) @ _POW5


class NB201Data:
    """The NAS-Bench-201 table in numpy arrays, one row per architecture (row ``i`` = NB201 index ``i``).

    Attributes:
        path: the CSV file.
        ops: ``(n, 6)`` int8 operation indices into ``NB201_OPS``.
        arch_str: the cell strings.
        canonical: NB201's isomorphism-canonical strings.
        columns: float arrays ``test_acc``, ``test_acc_nb201_old``, ``valid_acc_12ep``,
            ``train_time_12ep_s``, ``params_M``, ``flops_M``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as exc:
            raise DataError(f"cannot read NB201 table {path}: {exc}") from None
        needed = ("index", "arch_str", "ops", "canonical", *_NB201_FLOATS)
        if not rows or any(k not in rows[0] for k in needed):
            raise DataError(f"{path} is not an NB201 table: it needs the columns {list(needed)}")
        try:
            rows.sort(key=lambda r: int(r["index"]))
            self.ops = np.array([[int(x) for x in r["ops"].split("-")] for r in rows], dtype=np.int8)
            self.columns: dict[str, np.ndarray] = {
                k: np.array([float(r[k]) for r in rows], dtype=np.float64) for k in _NB201_FLOATS
            }
        except ValueError as exc:
            raise DataError(f"NB201 table {path} has a malformed value: {exc}") from None
        n = len(rows)
        if self.ops.shape != (n, 6) or [int(r["index"]) for r in rows] != list(range(n)):
            raise DataError(f"NB201 table {path}: expected indices 0..{n - 1} with 6 operations each")
        self.arch_str: list[str] = [r["arch_str"] for r in rows]
        self.canonical: list[str] = [r["canonical"] for r in rows]
        self.code_to_row = np.full(5**6, -1, dtype=np.int64)
        self.code_to_row[_ops_code(self.ops)] = np.arange(n)
        # Query path: op-name tuple -> row, and per row the metrics as Python floats.
        self.row_of: dict[tuple[str, ...], int] = {
            tuple(NB201_OPS[o] for o in ops): i for i, ops in enumerate(self.ops.tolist())
        }
        self.records: list[tuple[float, ...]] = list(
            zip(*(self.columns[k].tolist() for k in _EVAL_KEYS), strict=True)
        )

    def __len__(self) -> int:
        return len(self.arch_str)


class NB201Latency:
    """Per-device inference latency (ms) of every NB201 cell: ``nb201-latency/nb201_latency_ms.csv``.

    26 devices (HELP, Lee et al. 2021, collecting HW-NAS-Bench and BRP-NAS measurements): ``raspi4``,
    ``pixel3``, ``pixel2``, ``fpga``, ``eyeriss``, ``samsung_a50``, Xeon CPUs (``gold_6226``, ...)
    and GPUs at batch 1 / 32 / 256 (``titan_rtx_1``, ...). Rows are matched to the accuracy table
    by cell string, not by position.

    Attributes:
        devices: the device column names.
        ms: ``(15625, len(devices))`` latencies, row = NB201 index of the accuracy table.
    """

    def __init__(self, path: Path, data: NB201Data) -> None:
        try:
            with path.open(newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                rows = list(reader)
        except (OSError, StopIteration) as exc:
            raise DataError(f"cannot read NB201 latency table {path}: {exc}") from None
        if header[:2] != ["index", "arch_str"] or len(header) < 3:
            raise DataError(f"{path} is not an NB201 latency table (columns index, arch_str, <devices>)")
        self.devices: tuple[str, ...] = tuple(header[2:])
        self.ms = np.full((len(data), len(self.devices)), np.nan)
        try:
            for r in rows:
                self.ms[data.row_of[parse_arch_str(r[1])]] = [float(v) for v in r[2:]]
        except (ValueError, KeyError, SpaceError) as exc:
            raise DataError(f"NB201 latency table {path} has a malformed row: {exc}") from None
        if np.isnan(self.ms).any():
            raise DataError(f"NB201 latency table {path} does not cover every cell of the accuracy table")

    def column(self, device: str) -> np.ndarray:
        if device not in self.devices:
            raise ConfigError(
                f"unknown NB201 latency device {device!r}.{suggest(device, list(self.devices))} "
                f"Devices: {', '.join(self.devices)}"
            )
        return self.ms[:, self.devices.index(device)]


class NB201Table(Estimator):
    """NAS-Bench-201 as an estimator: a query returns the table's row for the cell.

    Metrics returned by :meth:`evaluate`: ``valid_acc_12ep`` (CIFAR-10-valid accuracy after 12
    epochs, %, the search signal), ``test_acc`` (test accuracy after 200 epochs, %, to report),
    ``train_time_12ep_s``, ``params_M``, ``flops_M``, ``index`` (the NB201 index) and
    ``sim_seconds`` (= ``train_time_12ep_s``, the simulated cost of the query). If ``metric`` is
    another column (``test_acc_nb201_old``), it is returned too.

    Args:
        root: the benchmarks directory (or the ``nb201`` folder itself); default
            ``$NASFORGE_BENCH_DIR``.
        dataset: the table's dataset; only ``cifar10`` ships with nasforge's benchmarks.
        latency_device: a device of the NB201 latency tables (``raspi4``, ``pixel3``, ``fpga``, ...;
            ``nb201-latency/nb201_latency_ms.csv`` beside ``nb201/``): adds ``latency_ms`` to the
            metrics, for objectives and constraints such as ``latency_ms <= 20``.
        metric: the column a search should optimise (:attr:`metric`; used by :meth:`best_test`
            and :attr:`optimum_metric`).

    Raises:
        DataError: if the table file is missing or unreadable (the message says where it looked).
        ConfigError: if ``dataset`` or ``metric`` is unknown.

    Example (with ``NASFORGE_BENCH_DIR`` pointing at the benchmarks)::

        >>> from nasforge.estimate import TrialContext
        >>> from nasforge.space import NB201Space
        >>> table = NB201Table()
        >>> arch = NB201Space().from_ops([3, 3, 3, 1, 3, 2])
        >>> table.evaluate(arch, TrialContext(0, seed=0))["test_acc"]
        94.373333
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        dataset: str = "cifar10",
        metric: str = "valid_acc_12ep",
        latency_device: str | None = None,
    ) -> None:
        if dataset not in NB201_DATASETS:
            raise ConfigError(f"nb201 dataset must be one of {list(NB201_DATASETS)}, got {dataset!r}")
        if metric not in NB201_METRICS:
            raise ConfigError(f"nb201 metric must be one of {list(NB201_METRICS)}, got {metric!r}")
        self.root = root
        self.dataset = dataset
        self.metric = metric
        self.path = bench_file(root, "nb201", f"nb201_{dataset}.csv")
        self._data: NB201Data | None = None
        self._extra = metric if metric not in _EVAL_KEYS else None
        self.latency_device = latency_device
        self._latency: np.ndarray | None = None
        if latency_device is not None:
            self.latency_path = bench_file(root, "nb201-latency", "nb201_latency_ms.csv")
            self.latency  # noqa: B018 - load now: a wrong device name is an error before any trial

    @property
    def latency(self) -> np.ndarray | None:
        """``latency_device``'s latency (ms) per table row, or None without a device."""
        if self.latency_device is None:
            return None
        if self._latency is None:
            data = self.data  # loaded first: _cached holds a (non-reentrant) lock while loading
            table = _cached("nb201-latency", self.latency_path, lambda p: NB201Latency(p, data))
            self._latency = table.column(self.latency_device)
        return self._latency

    # ----------------------------------------------------------------- loading
    @property
    def data(self) -> NB201Data:
        """The loaded table (read on first use, shared by every estimator on the same file)."""
        if self._data is None:
            self._data = _cached("nb201", self.path, NB201Data)
        return self._data

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_data"] = None  # reloaded from self.path (and the cache) on the other side
        state["_latency"] = None
        return state

    def __len__(self) -> int:
        return len(self.data)

    # ----------------------------------------------------------------- queries
    def index_of(self, arch: Architecture | Mapping[str, Any] | str) -> int:
        """The NB201 index (table row) of an architecture, its params or its cell string.

        Raises:
            SpaceError: if it is not an NB201 cell.
        """
        data = self.data
        if isinstance(arch, str):
            return data.row_of[parse_arch_str(arch)]
        params = arch if isinstance(arch, Mapping) else arch.params
        try:
            return data.row_of[tuple(params[e] for e in EDGE_NAMES)]
        except (KeyError, TypeError):
            return data.row_of[nb201_ops(params)]  # ints, numpy values; raises SpaceError if invalid

    def cheap_metrics(self, arch: Architecture, names: AbstractSet[str]) -> dict[str, float]:
        """The device latency (``latency_ms``), ``params_M`` and ``flops_M``, when asked for: they
        describe the network, not its training, so constraints on them are checked before a query."""
        known: dict[str, float] = {}
        if names & {"latency_ms", "params_M", "flops_M"}:
            row = self.index_of(arch)
            if "latency_ms" in names and self.latency is not None:
                known["latency_ms"] = float(self.latency[row])
            for name in names & {"params_M", "flops_M"}:
                known[name] = float(self.data.columns[name][row])
        return known

    def evaluate(self, arch: Architecture, ctx: TrialContext | None = None) -> dict[str, Any]:
        """Look up ``arch`` (a point of the ``nb201`` space); ``ctx`` is not used."""
        row = self.index_of(arch)
        valid, test, seconds, params, flops = self.data.records[row]
        out: dict[str, Any] = {
            "valid_acc_12ep": valid,
            "test_acc": test,
            "train_time_12ep_s": seconds,
            "params_M": params,
            "flops_M": flops,
            "index": row,
            "sim_seconds": seconds,
        }
        if self._extra is not None:
            out[self._extra] = float(self.data.columns[self._extra][row])
        if self.latency is not None:
            out["latency_ms"] = float(self.latency[row])
        return out

    def rows(self, ops: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Table rows (NB201 indices) of operation-index arrays of shape ``(..., 6)``.

        Raises:
            SpaceError: if the last axis is not 6 or an index is outside 0..4.
        """
        arr = np.asarray(ops)
        if arr.ndim == 0 or arr.shape[-1] != 6 or not np.issubdtype(arr.dtype, np.integer):
            raise SpaceError(f"NB201 operations are integer arrays of shape (..., 6), got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() >= len(NB201_OPS)):
            raise SpaceError(
                f"NB201 operation indices are 0..{len(NB201_OPS) - 1}, got {arr.min()}..{arr.max()}"
            )
        return self.data.code_to_row[_ops_code(arr)]

    def lookup(self, ops: np.ndarray | Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Vectorised query: every table column for operation-index arrays of shape ``(..., 6)``.

        Returns:
            ``{"index": rows, "test_acc": ..., "valid_acc_12ep": ..., ...}``, arrays of shape ``(...)``.
        """
        rows = self.rows(ops)
        out = {"index": rows}
        out.update({k: v[rows] for k, v in self.data.columns.items()})
        out["sim_seconds"] = out["train_time_12ep_s"]
        if self.latency is not None:
            out["latency_ms"] = self.latency[rows]
        return out

    def best_test(self, ops: np.ndarray | Sequence[Sequence[int]], *, by: str | None = None) -> float:
        """Test accuracy of the queried cell that is best by ``by`` (default :attr:`metric`).

        The usual NAS-benchmark report: the strategy sees only the search signal, and the cell it
        would pick is scored by its test accuracy (ties go to the first queried).

        Args:
            ops: the queried cells, operation indices of shape ``(n, 6)`` with ``n >= 1``.
            by: the column to select with; default :attr:`metric`.
        """
        rows = np.atleast_1d(self.rows(np.atleast_2d(np.asarray(ops))))
        if rows.size == 0:
            raise ConfigError("best_test needs at least one queried cell")
        column = self.data.columns[by or self.metric]
        return float(self.data.columns["test_acc"][rows[int(np.argmax(column[rows]))]])

    @property
    def optimum_index(self) -> int:
        """NB201 index of the cell with the highest test accuracy (the first of ties)."""
        return int(np.argmax(self.data.columns["test_acc"]))

    @property
    def optimum_test_acc(self) -> float:
        """The highest test accuracy in the table (94.3733 on CIFAR-10)."""
        return float(self.data.columns["test_acc"].max())

    @property
    def optimum_metric(self) -> float:
        """The highest value of :attr:`metric` in the table (84.892 for ``valid_acc_12ep``)."""
        return float(self.data.columns[self.metric].max())

    def __repr__(self) -> str:
        return f"NB201Table({str(self.path)!r}, dataset={self.dataset!r}, metric={self.metric!r})"


def _load_macro(path: Path) -> dict[str, tuple[float, int, int]]:
    try:
        raw = json.loads(path.read_text())
        return {k: (float(np.mean(v["test_acc"])), int(v["params"]), int(v["flops"])) for k, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"cannot read NAS-Bench-Macro table {path}: {exc!r}") from None


class MacroTable(Estimator):
    """NAS-Bench-Macro (6,561 CIFAR-10 networks) as an estimator.

    Architectures have eight parameters ``layer0`` .. ``layer7``, each ``"0"`` (identity), ``"1"``
    (MobileNetV2 block k3 e3) or ``"2"`` (MB k5 e6), as strings or ints. :meth:`evaluate` returns
    ``test_acc`` (%, mean over the three seeds), ``params`` and ``flops``.

    Args:
        root: the benchmarks directory (or the ``nas-bench-macro`` folder); default
            ``$NASFORGE_BENCH_DIR``.
        dataset: only ``cifar10`` exists.

    Raises:
        DataError: if the file is missing or unreadable.
    """

    def __init__(self, root: str | Path | None = None, *, dataset: str = "cifar10") -> None:
        if dataset != "cifar10":
            raise ConfigError(f"nb_macro dataset must be 'cifar10', got {dataset!r}")
        self.root = root
        self.dataset = dataset
        self.path = bench_file(root, "nas-bench-macro", f"nas-bench-macro_{dataset}.json")
        self._data: dict[str, tuple[float, int, int]] | None = None

    @property
    def data(self) -> dict[str, tuple[float, int, int]]:
        """8-character key -> (mean test accuracy, params, flops)."""
        if self._data is None:
            self._data = _cached("macro", self.path, _load_macro)
        return self._data

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    @staticmethod
    def key_of(arch: Architecture | Mapping[str, Any]) -> str:
        """The table key, e.g. ``"22212220"``, of an architecture or its params."""
        params = arch if isinstance(arch, Mapping) else arch.params
        try:
            key = "".join(str(params[f"layer{i}"]) for i in range(8))
        except KeyError:
            key = ""
        if len(key) != 8 or set(key) - set("012"):
            raise SpaceError(
                "a NAS-Bench-Macro architecture has parameters layer0..layer7, each 0, 1 or 2; "
                f"got {dict(params)!r}"
            )
        return key

    def evaluate(self, arch: Architecture, ctx: TrialContext | None = None) -> dict[str, Any]:
        """Look up ``arch``; ``ctx`` is not used."""
        acc, params, flops = self.data[self.key_of(arch)]
        return {"test_acc": acc, "params": params, "flops": flops}

    @property
    def optimum_test_acc(self) -> float:
        """The highest mean test accuracy (93.127, ``22212220``)."""
        return max(v[0] for v in self.data.values())

    def __repr__(self) -> str:
        return f"MacroTable({str(self.path)!r})"
