"""The zero-cost estimator: each candidate scored by proxies on one fixed batch instead of trained."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from nasforge._device import check_device_name, device_info, resolve_device, synchronize
from nasforge._threads import torch_threads
from nasforge.data import DetectionTask, Task
from nasforge.errors import ConfigError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.estimate._ensemble import resolve_proxies
from nasforge.estimate._proxies import check_names, compute_proxies
from nasforge.estimate._setup import build_seeded, default_threads

if TYPE_CHECKING:
    from nasforge.space import Architecture

__all__ = ["ZeroCostEstimator"]


class ZeroCostEstimator(Estimator):
    """Scores each candidate with zero-cost proxies instead of training it (registered as ``zero_cost``).

    The network is built with the trial's seed (as :class:`~nasforge.estimate.TrainEstimator`
    does) and scored by :func:`compute_proxies` on one fixed batch, the same for every trial so
    that scores compare:

    - ``data="task"`` (the default when a task is given): ``batch_size`` training images of the
      task, drawn once with ``data_seed``, with their labels (a
      :class:`~nasforge.data.DetectionTask` has no image labels: uniform random ones);
    - ``data="random"`` (the default without a task): standard-normal inputs of the network's input
      shape and uniform random labels, drawn with ``data_seed``. synflow, params and flops use no
      data at all, so they do not depend on this choice.

    Metrics returned: one per proxy (``synflow``, ``naswot``, ...) and ``proxy_seconds`` (wall
    time of scoring, building excluded). Larger proxy values mean "predicted better"; use one as
    the objective, e.g. ``objectives=["synflow"]``. A ``-inf`` naswot or ``nan`` jacob_cov (see
    :mod:`nasforge.estimate._proxies`) makes a trial that optimises it fail, which is the right
    verdict for such networks.

    Args:
        task: the dataset; optional. Without one the input shape and class count come from
            ``input_shape`` / ``num_classes`` or from the architecture's bound space.
        proxies: proxy names; default the classic nine (:data:`DEFAULT_PROXIES`). A named ensemble
            (:data:`~nasforge.estimate.ENSEMBLES`, e.g. ``az_nas``) stands for its members.
        batch_size: samples in the scoring batch (>= 2).
        data: ``"task"``, ``"random"`` or ``"auto"`` (task if there is one).
        data_seed: seed of the batch draw.
        input_shape: ``(C, H, W)`` when there is no task.
        num_classes: class count when there is no task.
        threads: torch threads while scoring; default every core this process may use.
        device: where networks are scored: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``,
            ``mps`` (see :func:`nasforge._device.resolve_device`); the batch is drawn on the CPU as
            before and moved, and the scores are computed in float32 (synflow in float64). Each
            trial records ``device``, ``device_name``, ``amp`` (off), ``torch_version`` and
            ``cuda_version``.

    Raises:
        ConfigError: on an unknown proxy, bad batch size or data choice, or an unusable device.

    Example:
        >>> import nasforge as nf
        >>> from nasforge.estimate import TrialContext, ZeroCostEstimator
        >>> space = nf.spaces.NB201Space(C=4, N=1).bind((3, 8, 8), 10)
        >>> est = ZeroCostEstimator(proxies=["synflow", "naswot"], batch_size=8)
        >>> m = est.evaluate(space.from_ops([3, 3, 3, 1, 3, 2]), TrialContext(0, seed=0))
        >>> sorted(m)[:4], m["device"]
        (['amp', 'cuda_version', 'device', 'device_name'], 'cpu')
    """

    task_kinds = ("classification", "detection")
    #: the proxies it computes, in order (always set)
    proxies: tuple[str, ...]

    def __init__(
        self,
        task: Task | None = None,
        *,
        proxies: Sequence[str] | None = None,
        batch_size: int = 64,
        data: str = "auto",
        data_seed: int = 0,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        threads: int | None = None,
        device: str = "auto",
    ) -> None:
        if task is not None and not isinstance(task, Task | DetectionTask):
            raise ConfigError(
                "ZeroCostEstimator takes a Task (nasforge.datasets.load(...)), a DetectionTask or None, "
                f"got {type(task).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ConfigError(f"batch_size must be an integer >= 2, got {batch_size=}")
        if data not in ("auto", "task", "random"):
            raise ConfigError(f"data must be 'auto', 'task' or 'random', got {data=}")
        if data == "task" and task is None:
            raise ConfigError("data='task' needs a task; pass task=... or use data='random'")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer, got {threads=}")
        self.task = task
        # an ensemble name (az_nas) stands for its members: the estimator scores one network
        self.proxies = tuple(check_names(None if proxies is None else resolve_proxies(proxies)[0]))
        self.batch_size = batch_size
        self.data = data
        self.data_seed = int(data_seed)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.num_classes = num_classes
        self.threads = threads
        resolve_device(device)  # unusable here: an error now, not in every trial
        self.device = check_device_name(device)
        self._batch: tuple[Tensor, Tensor] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batch"] = None  # redrawn (identically) on the other side
        return state

    def _shape(self, arch: Architecture) -> tuple[tuple[int, int, int], int]:
        if self.task is not None:
            return self.task.input_shape, self.task.num_classes
        shape = self.input_shape or arch.space.input_shape
        classes = self.num_classes or arch.space.num_classes
        if shape is None or classes is None or len(shape) != 3:
            raise ConfigError(
                "ZeroCostEstimator needs the input shape and class count: give it a task, or "
                "input_shape=(C, H, W) and num_classes, or bind the space with space.bind(...)"
            )
        return (int(shape[0]), int(shape[1]), int(shape[2])), int(classes)

    def batch(self, input_shape: tuple[int, int, int], num_classes: int) -> tuple[Tensor, Tensor]:
        """The fixed ``(inputs, targets)`` batch every architecture is scored on."""
        if self._batch is None or tuple(self._batch[0].shape[1:]) != input_shape:
            generator = torch.Generator().manual_seed(self.data_seed)
            if self.task is not None and self.data in ("auto", "task"):
                n = self.task.x_train.shape[0]
                idx = torch.randperm(n, generator=generator)[: self.batch_size]
                if isinstance(self.task, DetectionTask):  # its images, uniform random class labels
                    y = torch.randint(0, num_classes, (len(idx),), generator=generator)
                    self._batch = (self.task.x_train[idx], y)
                else:
                    self._batch = (self.task.x_train[idx], self.task.y_train[idx])
            else:
                x = torch.randn((self.batch_size, *input_shape), generator=generator)
                y = torch.randint(0, num_classes, (self.batch_size,), generator=generator)
                self._batch = (x, y)
        return self._batch

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        device = resolve_device(self.device)
        shape, classes = self._shape(arch)
        with torch_threads(self.threads or default_threads()):
            model = build_seeded(arch, shape, classes, ctx.seed).to(device)
            x, y = self.batch(shape, classes)
            x, y = x.to(device), y.to(device)
            start = time.perf_counter()
            scores = compute_proxies(model, x, y, names=self.proxies, seed=ctx.seed)
            synchronize(device)
            seconds = time.perf_counter() - start
        return {**scores, "proxy_seconds": round(seconds, 4), **device_info(device, "off")}

    def __repr__(self) -> str:
        where = self.task.name if self.task is not None else f"input_shape={self.input_shape}"
        return f"ZeroCostEstimator({where}, proxies={list(self.proxies)}, batch_size={self.batch_size})"
