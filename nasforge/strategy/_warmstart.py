"""Zero-cost warm start: pre-screen many random candidates with proxies, train the best first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from nasforge._checks import check_int
from nasforge._seeds import derive_seed
from nasforge.errors import ConfigError, SpaceError
from nasforge.registry import STRATEGIES
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._predictor import check_predictor, fit_predictor
from nasforge.strategy._util import sample_unseen
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.data import Task

__all__ = ["ProxyWarmStart", "Ranker", "TaskAwareRanker"]


@runtime_checkable
class Ranker(Protocol):
    """What the warm start needs of a scorer: a score per architecture, larger = better."""

    def rank(self, archs: Sequence[Architecture]) -> np.ndarray: ...


@runtime_checkable
class TaskAwareRanker(Ranker, Protocol):
    """A scorer that looks at the search's data (a :class:`~nasforge.estimate.ProxyScorer`): the warm
    start hands it the task it is given by :meth:`Strategy.set_task <nasforge.strategy.Strategy.set_task>`."""

    def set_task(self, task: Task) -> None: ...


#: candidates kept ranked beyond ``n_warm``, per warm slot: they replace warm proposals that a
#: constraint rules out before evaluation (infeasible ones cost nothing, so the warm start still
#: evaluates ``n_warm`` feasible architectures)
RESERVE = 10


class ProxyWarmStart(Strategy):
    """Zero-cost warm start: the best of ``n_candidates`` random architectures by proxy go first.

    Abdelfattah et al. (2021), "Zero-Cost Proxies for Lightweight NAS", section 5 ("warmup"):
    before the first query, ``n_candidates`` distinct random architectures are scored with
    zero-cost proxies (:class:`nasforge.estimate.ProxyScorer`: untrained networks, a fraction of a
    second each on CPU for the data-free synflow, the default) and the ``n_warm`` best (by rank vote
    when there are several proxies) are proposed first. Every result is told to the ``inner``
    strategy, which then takes over: a strategy that counts told trials as its initial sample
    (local search, BANANAS, evolution) starts from the pre-screened ones instead of random ones.

    The proxy scores are computed when the first architecture is asked for (the cost of
    ``n_candidates`` networks: ``scorer.computed`` and ``scorer.seconds`` tell how much) and
    remembered per key; with ``proxy_cache=PATH`` they are also kept in a file, so another run or
    a resumed one reads them instead. Data-dependent proxies (naswot, snip, ...) see a batch of the
    task's training images when the experiment knows the task (:meth:`set_task`), random inputs
    otherwise.

    Args:
        inner: the registered strategy that continues after the warm start.
        inner_options: its options (its seed is derived from this strategy's seed).
        proxies: proxy names that vote (:data:`nasforge.estimate.PROXIES`), or named ensembles
            (:data:`nasforge.estimate.ENSEMBLES`, e.g. ``az_nas``); default synflow, the best of the
            variants tried on NB201 (docs/benchmarks.md).
        aggregation: how several proxies are combined: ``"vote"`` (mean rank) or ``"log_rank"``
            (AZ-NAS); default the named ensemble's, else ``"vote"``.
        n_candidates: random architectures scored by the proxies (>= 1).
        n_warm: how many of the best are evaluated first (>= 1, at most ``n_candidates``); a
            proposal that a constraint rules out before evaluation (``trial.screened``) does not
            count, the next best goes instead (up to ``10 * n_warm`` proposals). Under such a
            constraint more warm cells pay: 30 did better than 10 on NB201 with a device latency
            budget (docs/benchmarks.md).
        proxy_cache: a JSON-lines file of proxy scores to read and extend (optional).
        batch_size: samples in the batch of data-dependent proxies.
        scorer: any object with ``rank(archs) -> array`` (larger = better) to use instead of the
            proxies, e.g. a :class:`~nasforge.estimate.ProxyScorer` built with other options;
            ``proxies``, ``proxy_cache`` and ``batch_size`` are then ignored.
        warm_from: the run directory of a previous search instead of proxies: ``predictor`` is
            fitted on its completed trials (their score under that run's objective), and its
            architectures that are points of this space join the candidates, so its best ones
            (predicted best, by construction) are proposed first, then the most promising new
            ones. For a search on a new dataset, or a longer one after a short exploration.
        predictor: the :func:`~nasforge.estimate.make_predictor` surrogate fitted on ``warm_from``
            (``"gbm"``, ``"rf"``, ``"gp"`` or ``"mlp"``).
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.ProxyWarmStart(inner="guided_local", n_candidates=500, seed=0)
    """

    def __init__(
        self,
        *,
        inner: str = "guided_local",
        inner_options: Mapping[str, Any] | None = None,
        proxies: Sequence[str] = ("synflow",),
        aggregation: str | None = None,
        n_candidates: int = 1000,
        n_warm: int = 10,
        proxy_cache: str | Path | None = None,
        batch_size: int = 64,
        scorer: Ranker | None = None,
        warm_from: str | Path | None = None,
        predictor: str = "gbm",
        seed: int | None = None,
    ) -> None:
        from nasforge.estimate import ProxyScorer  # loads the proxies, hence torch: on first use

        super().__init__(seed=seed)
        check_int("warm start n_candidates", n_candidates, 1)
        check_int("warm start n_warm", n_warm, 1)
        if n_warm > n_candidates:
            raise ConfigError(f"warm start n_warm ({n_warm}) cannot exceed n_candidates ({n_candidates})")
        if not isinstance(inner, str):
            raise ConfigError(f"warm start inner must be a registered strategy name, got {inner!r}")
        if STRATEGIES.canonical_name(inner) == STRATEGIES.canonical_name("zc_warm_start"):
            raise ConfigError("warm start inner cannot be another zero-cost warm start")
        if inner_options is not None and not isinstance(inner_options, Mapping):
            raise ConfigError(f"warm start inner_options must be a mapping, got {inner_options!r}")
        self.inner_name = inner
        self.inner_options = dict(inner_options or {})
        self.n_candidates = n_candidates
        self.n_warm = n_warm
        if scorer is not None and not isinstance(scorer, Ranker):
            raise ConfigError(f"warm start scorer must have a rank(archs) method, got {scorer!r}")
        if scorer is not None and warm_from is not None:
            raise ConfigError("give the warm start either scorer= or warm_from=, not both")
        if warm_from is not None:
            from nasforge.experiment._rundir import RunDir

            if not RunDir(warm_from).holds_search():
                raise ConfigError(
                    f"warm_from {str(warm_from)!r} is not a nasforge run directory (no {RunDir.DATABASE}); "
                    "give the run_dir of a previous search"
                )
            check_predictor(predictor, None)
        self.warm_from = None if warm_from is None else Path(warm_from)
        self.predictor = predictor
        self.scorer: Ranker = (
            scorer
            if scorer is not None
            else ProxyScorer(proxies, aggregation=aggregation, cache=proxy_cache, batch_size=batch_size)
        )
        self.inner = self._make_inner()
        self._reset()

    def _make_inner(self) -> Strategy:
        seed = None if self.seed is None else derive_seed(int(self.seed), 11)
        inner = STRATEGIES.create(self.inner_name, **{"seed": seed, **self.inner_options})
        if not isinstance(inner, Strategy):
            raise ConfigError(f"warm start inner {self.inner_name!r} is not a strategy")
        return inner

    def _reset(self) -> None:
        self._queue: list[Architecture] | None = None  # None until the candidates are scored
        self._warm_left = 0  # warm proposals still to make (a screened-out one is replaced)
        self._proposed: set[str] = set()
        self._told: set[str] = set()

    def on_setup(self) -> None:
        self._reset()
        self.inner.setup(self.space, self.objective)

    def set_task(self, task: Task) -> None:
        if isinstance(self.scorer, TaskAwareRanker):
            self.scorer.set_task(task)
        self.inner.set_task(task)

    # ------------------------------------------------------------------ ask / tell
    def _previous_run(self) -> dict[str, Architecture]:
        """Fit ``predictor`` on the previous run's results (it becomes the scorer); its architectures."""
        from nasforge.experiment import Experiment  # experiment imports strategy: imported here

        assert self.warm_from is not None
        prev = Experiment.open(self.warm_from, read_only=True)
        archs: dict[str, Architecture] = {}
        scores: dict[str, float] = {}
        for t in prev.trials:
            if t.state is not TrialState.COMPLETE:
                continue
            score = prev.objective.score(t)
            try:
                arch = self.space.make(t.architecture.params)
            except SpaceError:  # not a point of this search's space (or breaks its constraints)
                continue
            if np.isfinite(score) and score > scores.get(arch.key, -np.inf):
                archs[arch.key], scores[arch.key] = arch, score
        if len(archs) < 2:
            raise ConfigError(
                f"warm_from {str(self.warm_from)!r} has {len(archs)} completed trials that are points "
                "of this search's space; a predictor needs at least 2"
            )
        keys = sorted(archs)
        self.scorer = fit_predictor(
            self.predictor,
            {},
            [archs[k] for k in keys],
            np.array([scores[k] for k in keys]),
            self._fit_seed(),
        )
        return {k: a for k, a in archs.items() if k not in self._told}

    def _fit_seed(self) -> int:
        if self.seed is None:
            return int(self.rng.integers(2**31))
        return derive_seed(int(self.seed), 12)

    def _screen(self) -> list[Architecture]:
        """Score ``n_candidates`` distinct unseen random architectures (plus a previous run's); the
        best ``RESERVE * n_warm``, best first (the reserve replaces screened-out ones)."""
        cands: dict[str, Architecture] = {} if self.warm_from is None else self._previous_run()
        target = len(cands) + self.n_candidates
        for _ in range(3 * self.n_candidates):
            if len(cands) >= target:
                break
            arch = sample_unseen(self.space, self.rng, self._told | cands.keys())
            if arch is None:
                break
            cands[arch.key] = arch
        if not cands:
            return []
        archs = list(cands.values())
        order = np.argsort(-self.scorer.rank(archs), kind="stable")[: RESERVE * self.n_warm]
        return [archs[int(i)] for i in order]

    def ask(self) -> Architecture | None:
        if self._queue is None:
            self._queue = self._screen()
            self._warm_left = self.n_warm
        while self._queue and self._warm_left > 0:
            arch = self._queue.pop(0)
            if arch.key not in self._told and arch.key not in self._proposed:
                self._proposed.add(arch.key)
                self._warm_left -= 1
                return arch
        return self.inner.ask()

    def tell(self, trial: Trial) -> None:
        key = trial.architecture.key
        if trial.screened and key in self._proposed and key not in self._told:
            self._warm_left += 1  # ruled out by a constraint before evaluation: the next one goes
        self._told.add(key)
        self.inner.tell(trial)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "queue": None if self._queue is None else [dict(a.params) for a in self._queue],
            "warm_left": self._warm_left,
            "proposed": sorted(self._proposed),
            "told": sorted(self._told),
            "inner": {"type": type(self.inner).__name__, "state": self.inner.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()
        try:
            queue = state["queue"]
            self._queue = None if queue is None else [self.restore_arch(p) for p in queue]
            # a state saved before the reserve held only the warm proposals still to make
            self._warm_left = int(state.get("warm_left", 0 if queue is None else len(queue)))
            self._proposed = set(state["proposed"])
            self._told = set(state["told"])
            inner = state["inner"]
            if inner["type"] != type(self.inner).__name__:
                raise ValueError(f"inner strategy was {inner['type']}, now {type(self.inner).__name__}")
            self.inner.load_state_dict(inner["state"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"cannot restore ProxyWarmStart state: missing or bad entry {exc}") from None

    def __repr__(self) -> str:
        return (
            f"ProxyWarmStart(inner={self.inner_name!r}, scorer={self.scorer!r}, "
            f"n_candidates={self.n_candidates}, n_warm={self.n_warm})"
        )
