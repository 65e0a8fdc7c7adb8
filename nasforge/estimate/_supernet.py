"""Weight sharing as an estimator: single-path one-shot (SPOS) training of a supernet.

:class:`SupernetEstimator` trains one supernet of the search space on the task with one uniformly
sampled path per step (Guo et al. 2020, "Single Path One-Shot NAS"): the
:class:`~nasforge.nn._supernet.NB201SuperNet` for the ``nb201`` cell space (a random operation per
edge) and the :class:`~nasforge.nn._chain_supernet.ChainSuperNet` for the ``chain_cnn`` space (a
random architecture of the space, constraints included, on sliced shared weights). On the cell
space ``sampling="fair"`` is FairNAS (Chu et al. 2021): every step trains each operation of every
edge once, over ``len(ops)`` paths built from per-edge permutations, with one optimiser step on the
summed gradients. It is trained once, on the first evaluation, and saved as
``supernet.safetensors`` (weights, with the settings it was trained with as metadata) in the run
directory, or ``path``; a later search or a resumed one with the same settings loads it instead of
training again.

Evaluating an architecture then costs no training: its path inherits the shared weights, its
batch-norm statistics are recalibrated on ``calib_batches`` training batches, and its accuracy on
the validation split is the trial's ``val_accuracy`` and its loss ``val_loss`` (``inherited: 1``
marks them as such). On the chain space the loss ranks architectures closer to their stand-alone
accuracy than the accuracy does (``docs/benchmarks.md``): make ``-val_loss`` the objective to
search by it, as :class:`~nasforge.strategy.SPOS` does by default. With
``finetune_steps`` a copy of the path's inherited weights (the stand-alone network the
supernet's ``extract`` builds) first trains for that many Adam steps, so the score is that of a
short training starting from the shared weights; the supernet itself is left unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._checks import check_int
from nasforge._defaults import DEFAULT_SUPERNET_EPOCHS
from nasforge._device import check_device_name, device_info, resolve_device
from nasforge._threads import torch_threads
from nasforge.errors import CheckpointError, ConfigError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.estimate._setup import default_threads
from nasforge.space._nb201 import nb201_ops

# torch, safetensors, the training loop and the nn / hardware layers (all of which import torch) are
# imported on first use, so that `import nasforge` stays light.
if TYPE_CHECKING:
    import torch

    from nasforge.data import Task
    from nasforge.space import Architecture, SearchSpace

__all__ = ["SUPERNET_FILE", "SupernetEstimator", "train_steps"]

log = logging.getLogger("nasforge")

SUPERNET_FILE = "supernet.safetensors"
SAMPLINGS = ("uniform", "fair")


def train_steps(
    model: torch.nn.Module, task: Task, steps: int, batch_size: int, lr: float, *, seed: int
) -> None:  # on the model's and task's device; the batches come from a CPU generator
    """``steps`` Adam steps of ``model`` on random training batches of ``task``; the batches depend
    only on ``seed``, so every model given the same seed sees the same images (the fine-tuning of
    :class:`SupernetEstimator`, and a short training from scratch to compare it with)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(task.x_train)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(task.x_train[idx]), task.y_train[idx]).backward()
        opt.step()


class SupernetEstimator(Estimator):
    """Accuracy with inherited weights from a supernet trained once (see the module docstring).

    Args:
        task: the dataset.
        epochs: supernet training epochs.
        fraction: share of the training images the supernet trains on.
        batch_size: images per step.
        lr: peak learning rate (SGD, momentum 0.9, cosine to 0).
        weight_decay: of the weights.
        sampling: ``"uniform"`` (one random path per step) or ``"fair"`` (every operation once).
        C: first-stage channels of the supernet (default: the space's).
        N: cells per stage (default: the space's).
        calib_batches: training batches that recalibrate batch-norm statistics per architecture
            (the same batches for every architecture).
        finetune_steps: Adam steps that train a copy of each architecture's inherited weights on
            training batches (the same batches for every architecture) before it is scored; the
            supernet itself is unchanged. 0 scores the inherited weights as they are. On the chain
            space 20 steps raised Kendall's tau against stand-alone training from 0.48 to 0.79
            (``docs/benchmarks.md``), at 1.3-2.5 s per architecture on average there, more for
            larger architectures.
        finetune_lr: learning rate of those steps.
        eval_images: validation images per evaluation (default: all).
        path: where the trained supernet is saved / loaded (default: the run directory's
            ``supernet.safetensors``; not saved when the experiment has no run directory).
        threads: torch threads (default: the cores this process may use).
        seed: seeds the initial weights and the path and data order.
        device: where the supernet trains and architectures are scored: ``auto`` (default),
            ``cpu``, ``cuda``, ``cuda:N``, ``mps``. Weights are initialised and paths and batches
            drawn on the CPU as before, so the device changes no random choice; the saved
            supernet is the same file whatever trained it. Training is float32 (no ``amp``).

    Attributes:
        on_epoch: optional ``callback(epoch, epochs, record)`` after every training epoch.
        history: per-epoch training records (``epoch``, ``train_loss``, ``train_accuracy``,
            ``seconds``); loaded from the file too.
        train_seconds: what training the supernet took (0 when it was loaded).
    """

    def __init__(
        self,
        task: Task,
        *,
        epochs: int = DEFAULT_SUPERNET_EPOCHS,
        fraction: float = 1.0,
        batch_size: int = 64,
        lr: float = 0.05,
        weight_decay: float = 5e-4,
        sampling: str = "uniform",
        C: int | None = None,
        N: int | None = None,
        calib_batches: int = 10,
        finetune_steps: int = 0,
        finetune_lr: float = 0.003,
        eval_images: int | None = None,
        path: str | Path | None = None,
        threads: int | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        for label, value, low in (
            ("epochs", epochs, 1),
            ("batch_size", batch_size, 1),
            ("calib_batches", calib_batches, 1),
            ("finetune_steps", finetune_steps, 0),
            ("seed", seed, 0),
        ):
            check_int(f"supernet {label}", value, low)
        for label, opt in (("C", C), ("N", N), ("eval_images", eval_images), ("threads", threads)):
            if opt is not None:
                check_int(f"supernet {label}", opt, 1)
        if sampling not in SAMPLINGS:
            raise ConfigError(f"supernet sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise ConfigError(f"supernet fraction must be in (0, 1], got {fraction!r}")
        for label, num in (("lr", lr), ("weight_decay", weight_decay), ("finetune_lr", finetune_lr)):
            if isinstance(num, bool) or not isinstance(num, int | float) or num < 0:
                raise ConfigError(f"supernet {label} must be a number >= 0, got {num!r}")
        self.task = task
        self.epochs, self.fraction, self.batch_size = epochs, float(fraction), batch_size
        self.lr, self.weight_decay, self.sampling = float(lr), float(weight_decay), sampling
        self.C, self.N = C, N
        self.calib_batches, self.eval_images = calib_batches, eval_images
        self.finetune_steps, self.finetune_lr = finetune_steps, float(finetune_lr)
        self.path = Path(path) if path is not None else None
        self.threads, self.seed = threads, seed
        resolve_device(device)  # unusable here: an error now, not after the first trial
        self.device = check_device_name(device)
        self.net: Any = None  # NB201SuperNet or ChainSuperNet, once prepared
        self._space: Any = None
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self.loaded_from: Path | None = None
        self.on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None

    # ---------------------------------------------------------------------------- settings
    def settings(self, space: Any) -> dict[str, Any]:
        """What the trained weights depend on; a saved supernet is reused only if these match."""
        task = self.task
        assert task is not None
        if space.name == "nb201":
            shape: dict[str, Any] = {
                "space": "nb201",
                "ops": list(space.ops),
                "C": self.C or int(space.C),
                "N": self.N or int(space.N),
            }
        else:
            shape = {
                "space": "chain_cnn",
                "space_description": json.loads(json.dumps(space.to_dict())),
                "sharing": "slots",  # weights by weighted-layer count, one head per count (2026-11-30)
            }
        return {
            "format": "nasforge-supernet/1",
            **shape,
            "dataset": task.name,
            "input_shape": list(task.input_shape),
            "num_classes": task.num_classes,
            "train_images": len(task.x_train),
            "epochs": self.epochs,
            "fraction": self.fraction,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "sampling": self.sampling,
            "seed": self.seed,
        }

    # ---------------------------------------------------------------------------- training
    def prepare(self, space: SearchSpace, run_dir: Path | None = None) -> Any:
        """The trained supernet for ``space``: loaded from its file if one with the same settings
        exists, else trained now (and saved)."""
        name = space.name
        if name not in ("nb201", "chain_cnn"):
            raise ConfigError(
                "the supernet estimator works on the nb201 and chain_cnn spaces; "
                f"got the {name or type(space).__name__!r} space"
            )
        if name == "chain_cnn" and self.sampling == "fair":
            raise ConfigError("fair sampling needs a cell space (nb201); use sampling: uniform on chain_cnn")
        self._space = space
        settings = self.settings(space)
        if self.net is not None and self._settings == settings:
            return self.net
        target = self.path or (run_dir / SUPERNET_FILE if run_dir is not None else None)
        if target is not None and target.is_file():
            net = self._load(target, settings)
            if net is not None:
                net = net.to(self._device())
                self.net, self._settings, self.loaded_from = net, settings, target
                return net
        self.net = self._train(settings).to(self._device())
        self._settings = settings
        if target is not None:
            self._save(target, settings)
        return self.net

    _settings: dict[str, Any] | None = None
    _on_device: Any = None  # the task on the device, moved once

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _task_on(self, task: Task) -> Task:
        device = self._device()
        if self._on_device is None or self._on_device[0] is not task or self._on_device[1] != device:
            self._on_device = (task, device, task.to(device))
        moved: Task = self._on_device[2]
        return moved

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_on_device", None)  # a GPU copy stays in the process that made it
        return state

    def _build(self, settings: dict[str, Any]) -> Any:
        import torch

        from nasforge.nn._chain_supernet import ChainSuperNet
        from nasforge.nn._supernet import NB201SuperNet

        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(self.seed)  # CPU only: built on the CPU
            if settings["space"] == "chain_cnn":
                return ChainSuperNet(
                    self._space, tuple(settings["input_shape"]), int(settings["num_classes"])
                )
            return NB201SuperNet(
                tuple(settings["input_shape"]),
                int(settings["num_classes"]),
                ops=tuple(settings["ops"]),
                C=int(settings["C"]),
                N=int(settings["N"]),
            )

    def _train(self, settings: dict[str, Any]) -> Any:
        import torch
        from torch import nn

        task = self.task
        assert task is not None
        start = time.perf_counter()
        data = task.with_fraction(self.fraction, seed=self.seed) if self.fraction < 1 else task
        data = data.to(self._device())
        net = self._build(settings).to(self._device())
        cells = settings["space"] == "nb201"
        k = len(settings["ops"]) if cells else 0
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        n = len(data.x_train)
        steps = math.ceil(n / self.batch_size)
        opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs * steps)
        loss_fn = nn.CrossEntropyLoss()
        ops = tuple(settings["ops"]) if cells else ()
        self.history = []
        with torch_threads(self.threads or default_threads()):
            net.train()
            for epoch in range(1, self.epochs + 1):
                t0 = time.perf_counter()
                order = torch.randperm(n, generator=gen)
                total, correct, loss_sum = 0, 0, 0.0
                for b in range(steps):
                    idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                    x, y = data.x_train[idx], data.y_train[idx]
                    paths: list[Any]
                    if not cells:
                        paths = [dict(self._space.sample(rng).params)]
                    elif self.sampling == "fair":
                        perms = np.stack([rng.permutation(k) for _ in range(6)])  # (edges, k)
                        paths = [[ops[perms[e, j]] for e in range(6)] for j in range(k)]
                    else:
                        paths = [[ops[i] for i in rng.integers(0, k, 6)]]
                    opt.zero_grad(set_to_none=True)
                    for path in paths:
                        out = net(x, path=path)
                        loss = loss_fn(out, y)
                        loss.backward()
                        loss_sum += loss.item() * len(idx) / len(paths)
                        correct += int((out.argmax(1) == y).sum())
                        total += len(idx)
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                    opt.step()
                    sched.step()
                record = {
                    "epoch": epoch,
                    "train_loss": round(loss_sum / max(total / len(paths), 1), 5),
                    "train_accuracy": round(correct / max(total, 1), 5),
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                self.history.append(record)
                log.info("supernet epoch %d/%d: %s", epoch, self.epochs, record)
                if self.on_epoch is not None:
                    self.on_epoch(epoch, self.epochs, record)
        self.train_seconds = round(time.perf_counter() - start, 3)
        return net

    def _save(self, target: Path, settings: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        assert self.net is not None
        meta = {**settings, "history": self.history, "train_seconds": self.train_seconds}
        state = {k: v.detach().contiguous().cpu() for k, v in self.net.state_dict().items()}
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        save_file(state, str(tmp), metadata={"nasforge": json.dumps(meta)})
        tmp.replace(target)

    def _load(self, target: Path, settings: dict[str, Any]) -> Any:
        """The saved supernet, or None when it was trained with other settings (it is retrained)."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(target), framework="pt") as f:
                header = f.metadata() or {}
            meta = json.loads(header["nasforge"])
            state = load_file(str(target))
        except (SafetensorError, OSError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{target} is not a readable supernet file ({exc}); delete it to train the supernet again"
            ) from None
        saved = {k: meta.get(k) for k in settings}
        if saved != settings:
            changed = sorted(k for k in settings if saved.get(k) != settings[k])
            log.warning("%s was trained with other settings (%s); training again", target, ", ".join(changed))
            return None
        net = self._build(settings)
        result = net.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(f"{target}: the weights do not fit the supernet; delete it to train again")
        self.history = list(meta.get("history") or [])
        self.train_seconds = 0.0
        return net

    # ---------------------------------------------------------------------------- evaluation
    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        import torch

        from nasforge.estimate._loop import evaluate
        from nasforge.nn._supernet import recalibrate_bn

        net = self.prepare(arch.space, ctx.run_dir)
        assert self.task is not None
        task = self._task_on(self.task)
        cell: Any = nb201_ops(arch.params) if arch.space.name == "nb201" else dict(arch.params)
        start = time.perf_counter()
        with torch_threads(self.threads or default_threads()):
            gen = torch.Generator().manual_seed(self.seed)  # the same batches for every architecture
            order = torch.randperm(len(task.x_train), generator=gen)
            batches = (
                task.x_train[order[i * self.batch_size : (i + 1) * self.batch_size]]
                for i in range(self.calib_batches)
            )
            model: torch.nn.Module
            if self.finetune_steps:
                model = net.extract(cell).to(self._device())
                steps, lr = self.finetune_steps, self.finetune_lr
                train_steps(model, task, steps, self.batch_size, lr, seed=self.seed + 1)
                recalibrate_bn(model, batches)
            else:
                recalibrate_bn(net, batches, forward=lambda x: net(x, path=cell))

                class _Path(torch.nn.Module):
                    def forward(self, x: torch.Tensor) -> torch.Tensor:
                        return net(x, path=cell)

                model = _Path()
                net.eval()
            x_val, y_val = task.x_val, task.y_val
            if self.eval_images is not None:
                x_val, y_val = x_val[: self.eval_images], y_val[: self.eval_images]
            accuracy, loss = evaluate(model, x_val, y_val)
        from nasforge.hardware import count_params

        with torch.random.fork_rng(devices=[]):
            params = count_params(arch.build(task.input_shape, task.num_classes, device="meta"))
        return {
            "val_accuracy": accuracy,
            "val_loss": loss,
            "params": params,
            "inherited": 1,
            "finetune_steps": self.finetune_steps,
            "eval_seconds": round(time.perf_counter() - start, 4),
            **device_info(self._device(), "off"),  # supernets train and score in float32
        }
