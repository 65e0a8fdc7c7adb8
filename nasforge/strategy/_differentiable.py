"""Differentiable search on the NB201 cell space: DARTS (first order) and GDAS.

Both train one :class:`~nasforge.nn.NB201SuperNet` on the search's own data, alternating a step
on the network weights (one half of the training images) with a step on the architecture logits
``alpha`` (6 edges x candidate operations; the other half), as in Liu et al. 2019 (DARTS,
first-order approximation) and Dong & Yang 2019 (GDAS: one operation per edge sampled with the
Gumbel-softmax straight-through estimator, temperature annealed from ``tau_max`` to ``tau_min``).
The supernet is trained on the first :meth:`ask`; the derived cell (the most likely operation of
every edge) is the first architecture proposed, and later asks propose the next most likely cells
under ``softmax(alpha)``, so every proposal is an ordinary trial of the experiment (trained by its
estimator: stand-alone accuracy, not the supernet's).

**Collapse guard.** DARTS on NB201 is known to collapse into parameter-free operations (the
NB201 paper's DARTS-V1 cell is all ``skip_connect``: 54.30% on CIFAR-10). As in DARTS+ (Liang et
al. 2019), which stops the search once the cell holds too many skip connections, architecture
learning stops at the end of the first epoch (from epoch ``guard_from`` on, default 2, since
the first epoch's nearly uniform alphas say little) whose derived cell has more than
``max_skip`` (default 2) ``skip_connect`` edges chosen with a clear margin (probability at least
``guard_margin`` = 1.5 times uniform), and the alphas of the epoch before are kept. ``guard_ops``
widens it to other operations (``["skip_connect", "avg_pool_3x3", "none"]``: every
parameter-free one; on Fashion-MNIST a longer DARTS run drifted to pooling, see
docs/benchmarks.md).
``max_skip=None`` turns the guard off. The per-epoch history (derived cell, alpha entropy,
training loss and accuracy) is kept in the strategy's state (``guard`` says whether and when it
tripped) and tells what happened.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nasforge._checks import check_int
from nasforge._defaults import DEFAULT_SUPERNET_EPOCHS
from nasforge._device import check_device_name, resolve_device
from nasforge._seeds import derive_seed
from nasforge._threads import torch_threads
from nasforge.errors import ConfigError, SpaceError
from nasforge.estimate._setup import default_threads
from nasforge.space._nb201 import NB201_OPS, NB201Space
from nasforge.strategy._base import Strategy

if TYPE_CHECKING:
    import torch

    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["DARTS", "GDAS", "DifferentiableSearch"]

log = logging.getLogger("nasforge")


class DifferentiableSearch(Strategy):
    """Shared machinery of :class:`DARTS` and :class:`GDAS` (see the module docstring).

    Args:
        epochs: supernet training epochs (each: one pass over the weight half of the data).
        fraction: share of the task's training images used (split in two halves: weights, alpha).
        batch_size: images per step, for both halves.
        lr: peak learning rate of the weights (SGD, momentum 0.9, cosine to ``lr / 100``).
        weight_decay: of the weights.
        arch_lr: learning rate of the architecture logits (Adam, betas 0.5 / 0.999). The papers
            use 3e-4 over ~20,000 steps (50 CIFAR epochs); CPU searches here take about a
            thousand steps, hence 3e-3.
        arch_weight_decay: of the architecture logits.
        C: first-stage channels of the supernet (default: the space's).
        N: cells per stage of the supernet (default: the space's).
        max_skip: the collapse guard's limit on ``skip_connect`` edges (see the module docstring);
            None disables the guard.
        guard_from: the first epoch the guard checks.
        guard_margin: an edge counts for the guard only when its leading operation's probability
            is at least this many times uniform (``1 / len(ops)``).
        guard_ops: the operations the guard counts (default skip connections, as DARTS+; add
            ``"avg_pool_3x3"`` and ``"none"`` to guard against every parameter-free operation).
        threads: torch threads (default: the cores this process may use).
        seed: seeds the supernet's initial weights, alpha and the data order.
        device: where the supernet and alpha train: ``auto`` (default), ``cpu``, ``cuda``,
            ``cuda:N``, ``mps``. Initial weights, alpha, data order and GDAS's Gumbel noise are
            drawn on the CPU and moved, so the device changes no random choice. Float32 (no amp).

    Attributes:
        history: one dict per trained epoch (``epoch``, ``cell``, ``entropy``, ``train_loss``,
            ``train_accuracy``, ``seconds``, and ``tau`` for GDAS).
        on_epoch: optional ``callback(epoch, epochs, record)`` called after every epoch (the CLI
            shows a progress bar with it).
    """

    method: ClassVar[str] = "darts"

    def __init__(
        self,
        *,
        epochs: int = DEFAULT_SUPERNET_EPOCHS,
        fraction: float = 0.5,
        batch_size: int = 64,
        lr: float = 0.025,
        weight_decay: float = 3e-4,
        arch_lr: float = 3e-3,
        arch_weight_decay: float = 1e-3,
        C: int | None = None,
        N: int | None = None,
        max_skip: int | None = 2,
        guard_from: int = 2,
        guard_margin: float = 1.5,
        guard_ops: Sequence[str] = ("skip_connect",),
        threads: int | None = None,
        seed: int | None = None,
        device: str = "auto",
    ) -> None:
        super().__init__(seed=seed)
        check_int(f"{self.method} epochs", epochs, 1)
        resolve_device(device)  # unusable here: an error before the search starts
        self.device = check_device_name(device)
        check_int(f"{self.method} batch_size", batch_size, 1)
        if C is not None:
            check_int(f"{self.method} C", C, 1)
        if N is not None:
            check_int(f"{self.method} N", N, 1)
        if threads is not None:
            check_int(f"{self.method} threads", threads, 1)
        if max_skip is not None:
            check_int(f"{self.method} max_skip", max_skip, 0)
        check_int(f"{self.method} guard_from", guard_from, 1)
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ConfigError(f"{self.method} fraction must be in (0, 1], got {fraction!r}")
        for label, value in (
            ("lr", lr),
            ("arch_lr", arch_lr),
            ("weight_decay", weight_decay),
            ("arch_weight_decay", arch_weight_decay),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{self.method} {label} must be a number >= 0, got {value!r}")
        self.epochs = epochs
        self.fraction = float(fraction)
        self.batch_size = batch_size
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.arch_lr, self.arch_weight_decay = float(arch_lr), float(arch_weight_decay)
        self.C, self.N = C, N
        if isinstance(guard_margin, bool) or not isinstance(guard_margin, int | float) or guard_margin < 1:
            raise ConfigError(f"{self.method} guard_margin must be a number >= 1, got {guard_margin!r}")
        self.max_skip, self.guard_from, self.guard_margin = max_skip, guard_from, float(guard_margin)
        if isinstance(guard_ops, str) or not all(op in NB201_OPS for op in guard_ops):
            raise ConfigError(
                f"{self.method} guard_ops must be a list of {list(NB201_OPS)}, got {guard_ops!r}"
            )
        self.guard_ops = tuple(guard_ops)
        self.threads = threads
        self._task: Task | None = None
        self.alpha: list[list[float]] | None = None  # the learned logits, once trained
        self.history: list[dict[str, Any]] = []
        self.guard: dict[str, Any] | None = None
        self.search_seconds = 0.0
        self._order: list[tuple[int, ...]] | None = None
        self._position = 0

    @property
    def pending_epochs(self) -> int | None:
        """Supernet epochs still to train before the first proposal (None once trained)."""
        return self.epochs if self.alpha is None else None

    # ---------------------------------------------------------------------------- protocol
    @property
    def cell_space(self) -> NB201Space:
        """The NB201 cell space searched (:meth:`on_setup` refuses any other)."""
        space = self.space
        if not isinstance(space, NB201Space):
            raise ConfigError(
                f"{self.method} searches the nb201 cell space (space: {{name: nb201}}); "
                f"got the {space.name!r} space"
            )
        return space

    def on_setup(self) -> None:
        ops = self.cell_space.ops
        if len(ops) < 2:
            raise ConfigError(f"{self.method} needs at least two candidate operations, the space has {ops}")

    def set_task(self, task: Task) -> None:
        self._task = task

    def ask(self) -> Architecture | None:
        if self.alpha is None:
            self.search()
        assert self.alpha is not None
        if self._order is None:
            self._order = _ranked_cells(np.asarray(self.alpha))
        ops = self.cell_space.ops
        while self._position < len(self._order):
            cell = self._order[self._position]
            self._position += 1
            try:
                return self.space.make({f"edge{i}": ops[k] for i, k in enumerate(cell)})
            except SpaceError:  # breaks a constraint of the space: the next one
                continue
        return None

    def derived(self) -> Architecture:
        """The derived architecture: the most likely operation of every edge (trains if needed)."""
        if self.alpha is None:
            self.search()
        assert self.alpha is not None
        ops = self.cell_space.ops
        best = np.asarray(self.alpha).argmax(axis=1)
        return self.space.make({f"edge{i}": ops[int(k)] for i, k in enumerate(best)}, check_constraints=False)

    # ---------------------------------------------------------------------------- training
    def search(self, task: Task | None = None) -> list[list[float]]:
        """Train the supernet and the architecture logits on ``task`` (default: the experiment's)."""
        import torch  # on first use: `import nasforge` stays light
        from torch import nn

        task = task or self._task
        if task is None:
            raise ConfigError(
                f"{self.method} trains a supernet on the search's data: run it with a training "
                "estimator (estimator: train) so it knows the dataset, or call search(task)"
            )
        ops = tuple(self.cell_space.ops)
        seed = int(self.seed) if self.seed is not None else int(self.rng.integers(2**31))
        start = time.perf_counter()
        data = task.with_fraction(self.fraction, seed=seed) if self.fraction < 1 else task
        device = resolve_device(self.device)
        data = data.to(device)
        gen = torch.Generator().manual_seed(derive_seed(seed, 1))
        perm = torch.randperm(len(data.x_train), generator=gen)
        half = len(perm) // 2
        if half < 1:
            raise ConfigError(f"{self.method} needs at least 2 training images, got {len(perm)}")
        w_idx, a_idx = perm[:half], perm[half : 2 * half]
        with torch_threads(self.threads or default_threads()), torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(derive_seed(seed, 2))  # CPU: weights, alpha
            net = self._build_supernet(data, ops).to(device)
            alpha = nn.Parameter((1e-3 * torch.randn(6, len(ops))).to(device))
            w_opt = torch.optim.SGD(
                net.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay, nesterov=False
            )
            steps_per_epoch = math.ceil(half / self.batch_size)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                w_opt, T_max=self.epochs * steps_per_epoch, eta_min=self.lr / 100
            )
            a_opt = torch.optim.Adam(
                [alpha], lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_weight_decay
            )
            loss_fn = nn.CrossEntropyLoss()
            self.history, self.guard = [], None
            kept = alpha.detach().clone()
            for epoch in range(1, self.epochs + 1):
                t0 = time.perf_counter()
                net.train()
                tau = self._tau(epoch)
                ow = w_idx[torch.randperm(half, generator=gen)]
                oa = a_idx[torch.randperm(half, generator=gen)]
                total, correct, loss_sum = 0, 0, 0.0
                for b in range(steps_per_epoch):
                    bw = ow[b * self.batch_size : (b + 1) * self.batch_size]
                    ba = oa[b * self.batch_size : (b + 1) * self.batch_size]
                    # architecture step on the alpha half
                    a_opt.zero_grad(set_to_none=True)
                    out = self._forward(net, data.x_train[ba], alpha, tau, gen)
                    loss_fn(out, data.y_train[ba]).backward()
                    a_opt.step()
                    # weight step on the weight half
                    w_opt.zero_grad(set_to_none=True)
                    out = self._forward(net, data.x_train[bw], alpha.detach(), tau, gen)
                    loss = loss_fn(out, data.y_train[bw])
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    w_opt.step()
                    sched.step()
                    loss_sum += loss.item() * len(bw)
                    correct += int((out.argmax(1) == data.y_train[bw]).sum())
                    total += len(bw)
                probs = torch.softmax(alpha.detach(), dim=1)
                cell = [ops[int(k)] for k in probs.argmax(dim=1)]
                record: dict[str, Any] = {
                    "epoch": epoch,
                    "cell": cell,
                    "entropy": round(float(-(probs * probs.clamp_min(1e-12).log()).sum(1).mean()), 5),
                    "train_loss": round(loss_sum / max(total, 1), 5),
                    "train_accuracy": round(correct / max(total, 1), 5),
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                if tau is not None:
                    record["tau"] = round(tau, 5)
                self.history.append(record)
                log.info("%s epoch %d/%d: %s", self.method, epoch, self.epochs, record)
                if self.on_epoch is not None:
                    self.on_epoch(epoch, self.epochs, record)
                # an edge counts when skip_connect is its choice by a clear margin (at least
                # `guard_margin` times the uniform probability), so near-uniform alphas cannot trip it
                confident = probs.max(dim=1).values >= self.guard_margin / len(ops)
                skips = sum(1 for e, op in enumerate(cell) if op in self.guard_ops and bool(confident[e]))
                if self.max_skip is not None and epoch >= self.guard_from and skips > self.max_skip:
                    self.guard = {"epoch": epoch, "guarded_edges": skips, "kept": f"epoch {epoch - 1}"}
                    log.info("%s collapse guard at epoch %d: %d guarded edges", self.method, epoch, skips)
                    break
                kept = alpha.detach().clone()
        self.alpha = [[float(v) for v in row] for row in kept.cpu()]
        self._order, self._position = None, 0
        self.search_seconds = round(time.perf_counter() - start, 3)
        return self.alpha

    def _build_supernet(self, task: Task, ops: tuple[str, ...]) -> torch.nn.Module:
        """The weight-sharing network trained with alpha: ``net(x, weights=...)`` (mixture) and
        ``net(x, hard=(indices, hard_weights))`` (one sampled operation per edge)."""
        from nasforge.nn._supernet import NB201SuperNet  # nn imports torch: on first use

        return NB201SuperNet(
            task.input_shape,
            task.num_classes,
            ops=ops,
            C=self.C or self.cell_space.C,
            N=self.N or self.cell_space.N,
        )

    def _tau(self, epoch: int) -> float | None:
        return None

    def _forward(
        self,
        net: torch.nn.Module,
        x: torch.Tensor,
        alpha: torch.Tensor,
        tau: float | None,
        gen: torch.Generator,
    ) -> torch.Tensor:
        import torch

        return net(x, weights=torch.softmax(alpha, dim=1))

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "alpha": self.alpha,
            "history": self.history,
            "guard": self.guard,
            "search_seconds": self.search_seconds,
            "position": self._position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        try:
            alpha = state["alpha"]
            if alpha is not None and np.asarray(alpha).shape != (6, len(self.cell_space.ops)):
                raise ValueError(f"alpha of shape {np.asarray(alpha).shape} does not fit this space")
            self.alpha = alpha
            self.history = list(state["history"])
            self.guard = state["guard"]
            self.search_seconds = float(state["search_seconds"])
            self._position = int(state["position"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot restore {type(self).__name__} state: {exc}") from None
        self._order = None


class DARTS(DifferentiableSearch):
    """DARTS (first order) on the NB201 cell space; see :mod:`nasforge.strategy._differentiable`.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.DARTS(epochs=5, C=8, N=1, seed=0)
    """

    method = "darts"


class GDAS(DifferentiableSearch):
    """GDAS on the NB201 cell space: one Gumbel-sampled operation per edge and step.

    Args:
        tau_max: Gumbel-softmax temperature at the first epoch.
        tau_min: temperature at the last epoch (linear in between).
        epochs, fraction, ...: as :class:`DifferentiableSearch`.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.GDAS(epochs=5, C=8, N=1, seed=0)
    """

    method = "gdas"

    def __init__(
        self,
        *,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        epochs: int = DEFAULT_SUPERNET_EPOCHS,
        fraction: float = 0.5,
        batch_size: int = 64,
        lr: float = 0.025,
        weight_decay: float = 3e-4,
        arch_lr: float = 3e-3,
        arch_weight_decay: float = 1e-3,
        C: int | None = None,
        N: int | None = None,
        max_skip: int | None = 2,
        guard_from: int = 2,
        guard_margin: float = 1.5,
        guard_ops: Sequence[str] = ("skip_connect",),
        threads: int | None = None,
        seed: int | None = None,
        device: str = "auto",
    ) -> None:
        super().__init__(
            device=device,
            epochs=epochs,
            fraction=fraction,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            arch_lr=arch_lr,
            arch_weight_decay=arch_weight_decay,
            C=C,
            N=N,
            max_skip=max_skip,
            guard_from=guard_from,
            guard_margin=guard_margin,
            guard_ops=guard_ops,
            threads=threads,
            seed=seed,
        )
        numbers = isinstance(tau_min, int | float) and isinstance(tau_max, int | float)
        if not (numbers and 0 < tau_min <= tau_max):
            raise ConfigError(f"gdas needs 0 < tau_min <= tau_max, got {tau_min=!r}, {tau_max=!r}")
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def _tau(self, epoch: int) -> float | None:
        if self.epochs == 1:
            return self.tau_min
        return self.tau_max - (self.tau_max - self.tau_min) * (epoch - 1) / (self.epochs - 1)

    def _forward(
        self,
        net: torch.nn.Module,
        x: torch.Tensor,
        alpha: torch.Tensor,
        tau: float | None,
        gen: torch.Generator,
    ) -> torch.Tensor:
        import torch

        assert tau is not None
        logp = torch.log_softmax(alpha, dim=1)
        while True:  # resample the rare draw that overflows
            # drawn on the CPU generator (the same noise on every device), then moved
            noise = torch.empty(logp.shape, dtype=logp.dtype).exponential_(generator=gen)
            gumbel = -noise.to(logp.device).log()
            probs = torch.softmax((logp + gumbel) / tau, dim=1)
            if torch.isfinite(probs).all():
                break
        index = probs.argmax(dim=1)
        one_hot = torch.zeros_like(probs).scatter_(1, index[:, None], 1.0)
        hard = one_hot - probs.detach() + probs
        return net(x, hard=([int(i) for i in index], hard))


def _ranked_cells(alpha: np.ndarray) -> list[tuple[int, ...]]:
    """Every cell (one operation index per edge), most likely first under ``softmax(alpha)``."""
    logp = alpha - alpha.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    k = alpha.shape[1]
    cells = list(itertools.product(range(k), repeat=alpha.shape[0]))
    scores = np.array([sum(logp[e, c] for e, c in enumerate(cell)) for cell in cells])
    order = np.argsort(-scores, kind="stable")
    return [cells[i] for i in order]
