"""Single-path one-shot search (SPOS): search the trained supernet, then train the best for real."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge._checks import check_int
from nasforge._device import check_device_name, resolve_device
from nasforge._seeds import derive_seed
from nasforge.errors import ConfigError
from nasforge.estimate._supernet import SupernetEstimator
from nasforge.registry import STRATEGIES, check_options
from nasforge.strategy._base import Strategy

if TYPE_CHECKING:
    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = ["SPOS"]


# rank_by -> the inner search's objective (a leading "-" minimises)
_RANK_BY = {"loss": "-val_loss", "accuracy": "val_accuracy"}


class SPOS(Strategy):
    """Single-path one-shot NAS (Guo et al. 2020) on the NB201 cell space or the chain CNN space.

    On the first :meth:`ask`, a :class:`~nasforge.estimate.SupernetEstimator` trains the supernet
    on the search's data with uniform (or fair) path sampling, or loads it from the run
    directory's ``supernet.safetensors`` when a run with the same settings trained it already.
    Then the ``inner`` strategy (any registered one; default regularized evolution) searches the
    supernet for ``n_evaluations`` architectures in memory, each scored by its inherited-weight
    validation loss (``rank_by="loss"``) or accuracy in a fraction of a second. The architectures
    are then proposed best first as the experiment's trials, which its own estimator trains from
    scratch: stand-alone results for the supernet's favourites. The ranking is kept in the
    strategy's state, so a resumed run neither trains the supernet nor searches it again.

    Args:
        inner: the registered strategy that searches the supernet.
        inner_options: its options.
        n_evaluations: architectures the inner strategy scores on the supernet.
        rank_by: the inherited score the inner search optimises and the ranking sorts by: ``"loss"``
            (validation cross-entropy, lowest first) or ``"accuracy"`` (highest first). On the
            chain space the loss ranked architectures closer to their stand-alone accuracy than
            the inherited accuracy did (``docs/benchmarks.md``); on nb201 the two have not been
            compared.
        supernet: options of the :class:`~nasforge.estimate.SupernetEstimator` (``epochs``,
            ``sampling``, ``C``, ``N``, ``fraction``, ``lr``, ``calib_batches``, ...).
        seed: random seed (the supernet's and the inner strategy's seeds derive from it).
        device: where the supernet trains and scores architectures (``auto``, ``cpu``, ``cuda``,
            ``cuda:N``, ``mps``; a ``device`` in ``supernet`` wins). The trials it proposes train
            on the experiment estimator's device.

    Attributes:
        on_epoch: optional ``callback(epoch, epochs, record)`` after every supernet epoch.
        ranking: ``[{"params": ..., "inherited_accuracy": ..., "inherited_loss": ...}, ...]``
            best first, once searched.
        estimator: the supernet estimator (its ``history`` and ``train_seconds``).
    """

    def __init__(
        self,
        *,
        inner: str = "evolution",
        inner_options: Mapping[str, Any] | None = None,
        n_evaluations: int = 100,
        rank_by: str = "loss",
        supernet: Mapping[str, Any] | None = None,
        seed: int | None = None,
        device: str = "auto",
    ) -> None:
        super().__init__(seed=seed)
        check_int("spos n_evaluations", n_evaluations, 1)
        resolve_device(device)  # unusable here: an error before the search starts
        self.device = check_device_name(device)
        if rank_by not in _RANK_BY:
            raise ConfigError(f"spos rank_by must be 'loss' or 'accuracy', got {rank_by!r}")
        if not isinstance(inner, str) or STRATEGIES.canonical_name(inner) in ("spos", "darts", "gdas"):
            raise ConfigError(
                f"spos inner must be an ask-and-tell strategy name (e.g. evolution), got {inner!r}"
            )
        if inner_options is not None and not isinstance(inner_options, Mapping):
            raise ConfigError(f"spos inner_options must be a mapping, got {inner_options!r}")
        if supernet is not None and not isinstance(supernet, Mapping):
            raise ConfigError(f"spos supernet options must be a mapping, got {supernet!r}")
        check_options("strategy", inner, STRATEGIES.get(inner), dict(inner_options or {}))
        if "task" in (supernet or {}) or "path" in (supernet or {}):
            raise ConfigError("spos supernet options cannot set task or path (they come from the experiment)")
        check_options("estimator", "supernet", SupernetEstimator, {"task": None, **dict(supernet or {})})
        SupernetEstimator(None, **dict(supernet or {}))  # type: ignore[arg-type]  # bad values fail now, not mid-run
        self.inner_name = inner
        self.inner_options = dict(inner_options or {})
        self.n_evaluations = n_evaluations
        self.rank_by = rank_by
        self.supernet_options = dict(supernet or {})
        self._task: Task | None = None
        self._run_dir: Path | None = None
        self.estimator: Any = None
        self.ranking: list[dict[str, Any]] | None = None
        self.search_seconds = 0.0
        self._position = 0

    @property
    def pending_epochs(self) -> int | None:
        """Supernet epochs to train before the first proposal (None once searched; a supernet
        saved by an earlier run is loaded instead)."""
        return int(self.supernet_options.get("epochs", 10)) if self.ranking is None else None

    def on_setup(self) -> None:
        if self.space.name not in ("nb201", "chain_cnn"):
            raise ConfigError(
                "spos searches the nb201 or chain_cnn space (it has a supernet for those); "
                f"got the {self.space.name!r} space"
            )

    def set_task(self, task: Task) -> None:
        self._task = task

    def set_run_dir(self, run_dir: Path) -> None:
        self._run_dir = Path(run_dir)

    def search(self, task: Task | None = None) -> list[dict[str, Any]]:
        """Train (or load) the supernet and search it; returns the ranking, best first."""
        # the inner search is an Experiment, and experiment imports strategy: imported here
        from nasforge.experiment import Experiment, TrialState

        task = task or self._task
        if task is None:
            raise ConfigError(
                "spos trains a supernet on the search's data: run it with a training estimator "
                "(estimator: train) so it knows the dataset, or call search(task)"
            )
        seed = int(self.seed) if self.seed is not None else int(self.rng.integers(2**31))
        start = time.perf_counter()
        options = {"seed": derive_seed(seed, 1), "device": self.device, **self.supernet_options}
        self.estimator = SupernetEstimator(task, **options)
        self.estimator.on_epoch = self.on_epoch
        self.estimator.prepare(self.space, self._run_dir)
        objectives = [_RANK_BY[self.rank_by]]
        inner = Experiment("spos-inner", space=self.space, objectives=objectives, seed=derive_seed(seed, 2))
        inner.run(
            self.inner_name, self.estimator, n_trials=self.n_evaluations, strategy_options=self.inner_options
        )
        done = [t for t in inner.trials if t.state is TrialState.COMPLETE]
        done.sort(key=lambda t: (-inner.objective.score(t), t.number))  # best first
        self.ranking = [
            {
                "params": dict(t.architecture.params),
                "inherited_accuracy": float(t.metrics["val_accuracy"]),
                "inherited_loss": float(t.metrics["val_loss"]),
            }
            for t in done
        ]
        self.search_seconds = round(time.perf_counter() - start, 3)
        self._position = 0
        return self.ranking

    def ask(self) -> Architecture | None:
        if self.ranking is None:
            self.search()
        assert self.ranking is not None
        if self._position >= len(self.ranking):
            return None
        entry = self.ranking[self._position]
        self._position += 1
        return self.restore_arch(entry["params"])

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "ranking": self.ranking,
            "position": self._position,
            "search_seconds": self.search_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        try:
            ranking = state["ranking"]
            self.ranking = None if ranking is None else [dict(r) for r in ranking]
            self._position = int(state["position"])
            self.search_seconds = float(state["search_seconds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot restore SPOS state: {exc}") from None
