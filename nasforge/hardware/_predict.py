"""Predict a network's latency from a table of its blocks' measured latencies (a lookup table).

The network is cut into blocks: the children of its ``nn.Sequential`` containers, recursively
(a chain CNN's layers, an MBConv stage's blocks, the pooling head, the classifier). Each block is
timed alone on this machine, at the input shape it sees inside the network, and the time is kept
under a key made of its structure (``repr``) and that shape, so a block that appears in many
architectures is measured once. A network's predicted latency is the sum of its blocks plus the
fixed cost of one call (timed on an empty network). Blocks timed alone run a little faster than
inside a network (warm caches, no glue between them), so :meth:`LatencyTable.calibrate` fits a
scale and an offset on a few networks timed whole. The table can be saved as JSON and reloaded;
it records the machine, thread count and batch size it was measured with.

Example:
    >>> from torch import nn
    >>> from nasforge.hardware import LatencyTable
    >>> table = LatencyTable(repeats=5, warmup=1)
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    >>> ms = table.predict(net, (1, 12, 12))  # measures 3 blocks, then adds them up
    >>> len(table)
    3
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError
from nasforge.hardware._latency import measure_latency

if TYPE_CHECKING:
    from torch import nn

    from nasforge.space import Architecture

__all__ = ["LatencyTable"]

_VERSION = 1


class LatencyTable:
    """Per-block latencies measured on this machine, and network latency predicted from them.

    Args:
        threads: intra-op threads for every measurement.
        batch_size: images per call.
        repeats: timed calls per block (the median is kept).
        warmup: untimed calls before each block's timing.
    """

    def __init__(self, *, threads: int = 1, batch_size: int = 1, repeats: int = 30, warmup: int = 5) -> None:
        if min(threads, batch_size, warmup + 1) < 1 or repeats < 2:
            raise ConfigError("threads and batch_size must be >= 1, repeats >= 2 and warmup >= 0")
        self.threads = threads
        self.batch_size = batch_size
        self.repeats = repeats
        self.warmup = warmup
        self.entries: dict[str, dict[str, Any]] = {}  # key -> {"op", "input_shape", "ms"}
        self.overhead_ms: float | None = None
        self.scale = 1.0  # from calibrate(): predicted = scale * (sum of blocks + overhead) + offset
        self.offset_ms = 0.0
        self.measured = 0  # blocks timed by this object (cache misses)

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ blocks
    def blocks(
        self, model: nn.Module, input_shape: Sequence[int]
    ) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        """``(key, block, input shape)`` for each block of ``model``, in call order."""
        import torch

        leaves: list[nn.Module] = []

        def expand(module: nn.Module) -> None:
            for child in module.children():
                if isinstance(child, torch.nn.Sequential):
                    expand(child)
                else:
                    leaves.append(child)

        if isinstance(model, torch.nn.Sequential) or list(model.children()):
            expand(model)
        else:
            leaves.append(model)
        shapes: dict[int, tuple[int, ...]] = {}

        def hook(module: nn.Module, inputs: Any) -> None:
            if id(module) not in shapes and inputs and isinstance(inputs[0], torch.Tensor):
                shapes[id(module)] = tuple(inputs[0].shape[1:])

        handles = [leaf.register_forward_pre_hook(hook) for leaf in leaves]
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                model(torch.zeros((1, *input_shape)))
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        out = []
        for leaf in leaves:
            if id(leaf) in shapes:  # a block the forward pass did not call takes no time
                shape = shapes[id(leaf)]
                out.append((_key(leaf, shape), leaf, shape))
        return out

    # ------------------------------------------------------------------ predict
    def predict(self, model: nn.Module | Architecture, input_shape: Sequence[int] | None = None) -> float:
        """Predicted median latency in ms of one call of ``model`` (a module, or an architecture of
        a bound space); blocks not in the table yet are measured now."""
        return self.scale * self.block_sum(model, input_shape) + self.offset_ms

    def block_sum(self, model: nn.Module | Architecture, input_shape: Sequence[int] | None = None) -> float:
        """The uncalibrated prediction: the call overhead plus every block's time (measuring new ones)."""
        from nasforge.space import Architecture

        if isinstance(model, Architecture):
            space = model.space
            if input_shape is None:
                if space.input_shape is None:
                    raise ConfigError(
                        "the architecture's space is not bound to an input shape; pass input_shape"
                    )
                input_shape = space.input_shape
            model = model.build()
        if input_shape is None:
            raise ConfigError("predict() needs the input shape of one image, e.g. (1, 28, 28)")
        shape = tuple(int(s) for s in input_shape)
        total = self._overhead()
        for key, block, block_shape in self.blocks(model, shape):
            if key not in self.entries:
                self.entries[key] = {
                    "op": type(block).__name__,
                    "input_shape": list(block_shape),
                    "ms": self._time(block, block_shape),
                }
                self.measured += 1
            total += float(self.entries[key]["ms"])
        return total

    def calibrate(self, models: Sequence[tuple[nn.Module, Sequence[int], float]]) -> tuple[float, float]:
        """Fit ``scale`` and ``offset_ms`` (least squares) so that predictions match networks timed
        whole: ``models`` holds ``(module, input_shape, measured median ms)`` for at least two.
        Returns ``(scale, offset_ms)``."""
        import numpy as np

        if len(models) < 2:
            raise ConfigError("calibrate() needs at least two networks with their measured latency")
        x = np.array([self.block_sum(m, shape) for m, shape, _ in models])
        y = np.array([float(ms) for _, _, ms in models])
        if np.ptp(x) == 0:
            self.scale, self.offset_ms = float(np.mean(y) / x[0]), 0.0
        else:
            slope, intercept = np.polyfit(x, y, 1)
            self.scale, self.offset_ms = float(slope), float(intercept)
        return self.scale, self.offset_ms

    def _time(self, module: nn.Module, shape: tuple[int, ...]) -> float:
        alone = copy.deepcopy(module)
        report = measure_latency(
            alone,
            shape,
            batch_size=self.batch_size,
            threads=self.threads,
            warmup=self.warmup,
            repeats=self.repeats,
        )
        return float(report.median_ms)

    def _overhead(self) -> float:
        """The cost of calling a module at all (an empty network), measured once."""
        if self.overhead_ms is None:
            import torch

            self.overhead_ms = self._time(torch.nn.Identity(), (1, 8, 8))
        return self.overhead_ms

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (with the machine and settings it was measured with)."""
        import torch

        path = Path(path)
        payload = {
            "version": _VERSION,
            "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "repeats": self.repeats,
            "overhead_ms": self.overhead_ms,
            "scale": self.scale,
            "offset_ms": self.offset_ms,
            "entries": self.entries,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table written by :meth:`save` (plain JSON: nothing is executed)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            table = cls(
                threads=int(data["threads"]),
                batch_size=int(data["batch_size"]),
                repeats=int(data.get("repeats", 30)),
            )
            table.overhead_ms = None if data.get("overhead_ms") is None else float(data["overhead_ms"])
            table.entries = {str(k): dict(v) for k, v in data["entries"].items()}
            table.scale = float(data.get("scale", 1.0))
            table.offset_ms = float(data.get("offset_ms", 0.0))
        except FileNotFoundError:
            raise ConfigError(f"latency table {path} does not exist") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{path} is not a nasforge latency table ({type(exc).__name__}: {exc})"
            ) from None
        return table


def _key(module: nn.Module, shape: tuple[int, ...]) -> str:
    text = f"{module!r}|{shape}"
    return f"{type(module).__name__}:{hashlib.sha1(text.encode()).hexdigest()[:16]}"
