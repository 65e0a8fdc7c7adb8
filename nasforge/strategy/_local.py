"""Local search (hill climbing with random restarts), White et al. 2020."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._checks import check_int
from nasforge.errors import ConfigError
from nasforge.estimate._mlp import MLPEnsemble
from nasforge.estimate._predictors import encode_architectures
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._predictor import check_predictor, fit_predictor
from nasforge.strategy._util import sample_unseen, score_from_json, score_to_json
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.estimate import Predictor

__all__ = ["GuidedLocalSearch", "LocalSearch"]

_ORDERS = ("random", "predicted")


class LocalSearch(Strategy):
    """Local search: hill climbing over ``space.neighbours`` with random restarts.

    White, Nolen, Savani, "Exploring the loss landscape in neural architecture search" (UAI 2021;
    arXiv 2020 as "Local search is state of the art for neural architecture search benchmarks").
    After ``n_initial`` random architectures (trials told from a warm start count), the best one
    becomes the *current* point and its untried neighbours are proposed in a random order. With
    ``first_improvement`` (default) the search moves as soon as a neighbour beats the current
    point; otherwise the whole neighbourhood is evaluated first and the best neighbour is taken
    (the paper's Algorithm 1). When no neighbour improves (a local optimum), the search restarts
    from a fresh random architecture.

    With ``order="predicted"`` a cheap predictor guides the climb: BANANAS's ensemble of small
    MLPs (:class:`~nasforge.estimate._mlp.MLPEnsemble`, on the path encoding when the space
    has one), refitted on all finite results whenever one arrives, ranks the untried neighbours
    best predicted first (ties in random order), so an improving neighbour tends to be found after
    fewer queries. Restarts, and the random proposals made while results are pending, take the best
    predicted of ``n_restart_candidates`` random unseen architectures. Until two results are in,
    the order is random. Each refit costs ~20 ms, so a guided search makes tens of queries per
    second instead of thousands: worth it when a query is a real training run.

    Works asynchronously: ``ask`` may be called before earlier trials are told; pending proposals
    are never proposed again, and while the current point's neighbourhood waits for results the
    strategy proposes random architectures. Neighbours already evaluated (for instance as initial
    samples) count without being re-evaluated.

    Args:
        n_initial: random architectures before the first climb (>= 1).
        first_improvement: move to the first improving neighbour (True) or only after the whole
            neighbourhood is evaluated (False).
        order: ``"random"`` (the paper) or ``"predicted"`` (neighbours ranked by the predictor).
        n_restart_candidates: random architectures the predictor chooses a restart from
            (``order="predicted"`` only; 1 makes restarts plain random).
        predictor: the model that ranks (``order="predicted"`` only): ``"mlp"``, the BANANAS
            ensemble, or a :func:`nasforge.estimate.make_predictor` surrogate (``"gbm"``, ``"rf"``,
            ``"gp"``) on the same encoding.
        predictor_options: options of that surrogate (e.g. ``{"n_estimators": 200}``).
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.LocalSearch(n_initial=10, seed=0)
        >>> guided = nf.strategy.LocalSearch(order="predicted", seed=0)
    """

    def __init__(
        self,
        *,
        n_initial: int = 10,
        first_improvement: bool = True,
        order: str = "random",
        n_restart_candidates: int = 100,
        predictor: str = "mlp",
        predictor_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        check_int("local search n_initial", n_initial, 1)
        check_int("local search n_restart_candidates", n_restart_candidates, 1)
        if not isinstance(first_improvement, bool):
            raise ConfigError(f"local search first_improvement must be a bool, got {first_improvement=}")
        if order not in _ORDERS:
            raise ConfigError(
                f"local search order must be one of {', '.join(map(repr, _ORDERS))}, got {order=}; "
                "use 'predicted' to rank neighbours with a predictor fitted on the results so far"
            )
        self.n_initial = n_initial
        self.first_improvement = first_improvement
        self.order = order
        self.n_restart_candidates = n_restart_candidates
        self.predictor, self.predictor_options = check_predictor(predictor, predictor_options)
        self._reset()

    def _reset(self) -> None:
        self._seen: set[str] = set()  # proposed or told
        self._scores: dict[str, float] = {}  # told keys -> best score seen for them
        self._best: Architecture | None = None
        self._current: Architecture | None = None
        self._queue: list[Architecture] = []
        self._nbrs: dict[str, Architecture] = {}  # the current point's neighbourhood, by key
        # predictor state (order="predicted"): the training set grows with every finite result
        self._train: dict[str, Architecture] = {}  # told keys with a finite score
        self._version = 0  # changes of the training set so far
        self._ranked_at = -1  # training-set version the queue was last ranked with
        self._model: MLPEnsemble | Predictor | None = None
        self._model_version = -1
        self._model_seed: int | None = None
        self._codes: dict[str, np.ndarray] = {}

    def on_setup(self) -> None:
        self._reset()

    # ------------------------------------------------------------------ predictor
    @property
    def _guided(self) -> bool:
        return self.order == "predicted" and len(self._train) >= 2

    def _encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        rows = []
        for a in archs:
            code = self._codes.get(a.key)
            if code is None:
                code = self._codes[a.key] = encode_architectures([a])[0]
            rows.append(code)
        return np.stack(rows)

    def _predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Mean predicted score of ``archs``; refits first if the training set changed."""
        if self._model_version != self._version or self._model_seed is None:
            self._model_seed = int(self.rng.integers(2**62))
            self._model = None
        if self._model is None:  # a new fit, or resumed: refit exactly what was fitted before
            keys = sorted(self._train)  # a fixed order, so a resumed fit is the same fit
            train = [self._train[k] for k in keys]
            y = np.array([self._scores[k] for k in keys])
            if self.predictor == "mlp":
                rng = np.random.default_rng(self._model_seed)
                self._model = MLPEnsemble().fit(self._encode(train), y, rng)
            else:
                opts = self.predictor_options
                self._model = fit_predictor(self.predictor, opts, train, y, self._model_seed)
            self._model_version = self._version
        if isinstance(self._model, MLPEnsemble):
            mean: np.ndarray = self._model.predict(self._encode(archs)).mean(axis=0)
            return mean
        return self._model.predict(archs)

    def _rank(self, archs: list[Architecture]) -> list[Architecture]:
        """``archs`` best predicted first (unchanged when unguided)."""
        self._ranked_at = self._version
        if not self._guided or len(archs) < 2:
            return archs
        order = np.argsort(-self._predict(archs), kind="stable")
        return [archs[int(i)] for i in order]

    # ------------------------------------------------------------------ internals
    def _propose_random(self) -> Architecture | None:
        if self._guided and len(self._seen) >= self.n_initial and self.n_restart_candidates > 1:
            cands: dict[str, Architecture] = {}
            for _ in range(self.n_restart_candidates):
                cand = sample_unseen(self.space, self.rng, self._seen)
                if cand is None:
                    break
                cands.setdefault(cand.key, cand)
            arch = self._rank(list(cands.values()))[0] if cands else None
        else:
            arch = sample_unseen(self.space, self.rng, self._seen)
        if arch is not None:
            self._seen.add(arch.key)
        return arch

    def _set_current(self, arch: Architecture) -> None:
        """Centre the search on ``arch`` and queue its untried neighbours in a random order.

        With first improvement, first walk up through neighbours whose results are known already.
        """
        while True:
            self._current = arch
            self._nbrs = {n.key: n for n in self.space.neighbours(arch)}
            nxt = self._best_neighbour() if self.first_improvement else None
            if nxt is None:
                break
            arch = nxt  # strictly better each time, so the walk ends
        untried = [n for n in self._nbrs.values() if n.key not in self._seen]
        self._queue = self._rank([untried[int(i)] for i in self.rng.permutation(len(untried))])

    def _best_neighbour(self) -> Architecture | None:
        """The best told neighbour if it beats the (told) current point, else None."""
        assert self._current is not None
        here = self._scores.get(self._current.key)
        if here is None:
            return None
        best, best_score = None, here
        for key, nbr in self._nbrs.items():
            s = self._scores.get(key)
            if s is not None and s > best_score:
                best, best_score = nbr, s
        return best

    def _waiting(self) -> bool:
        """Whether the current point or one of its neighbours is proposed but not told yet."""
        assert self._current is not None
        keys = itertools.chain([self._current.key], self._nbrs)
        return any(k in self._seen and k not in self._scores for k in keys)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Architecture | None:
        if len(self._seen) < self.n_initial:  # warm-start trials count towards the initial ones
            return self._propose_random()
        if self._current is None:
            if self._best is None:  # nothing usable told yet (asynchronous start, or all failed)
                return self._propose_random()
            self._set_current(self._best)
        while True:
            if self._guided and self._ranked_at != self._version:  # results arrived: re-rank
                self._queue = self._rank([a for a in self._queue if a.key not in self._seen])
            while self._queue:
                arch = self._queue.pop(0)
                if arch.key not in self._seen:
                    self._seen.add(arch.key)
                    return arch
            if self._waiting():
                return self._propose_random()
            nxt = self._best_neighbour()
            if nxt is None:
                break
            self._set_current(nxt)
        # a local optimum: restart from a fresh random point
        restart = self._propose_random()
        if restart is not None:
            self._set_current(restart)
        return restart

    def tell(self, trial: Trial) -> None:
        arch = trial.architecture
        self._seen.add(arch.key)
        score = self.objective.score(trial) if trial.state is TrialState.COMPLETE else -math.inf
        old = self._scores.get(arch.key)
        self._scores[arch.key] = new = score if old is None else max(old, score)
        if math.isfinite(new) and new != old:
            self._train[arch.key] = arch
            self._version += 1
        if math.isfinite(score) and (
            self._best is None or score > self._scores.get(self._best.key, -math.inf)
        ):
            self._best = arch
        if (
            self.first_improvement
            and self._current is not None
            and (arch.key == self._current.key or arch.key in self._nbrs)
        ):
            nxt = self._best_neighbour()
            if nxt is not None:
                self._set_current(nxt)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "seen": sorted(self._seen),
            "scores": {k: score_to_json(s) for k, s in self._scores.items()},
            "best": None if self._best is None else dict(self._best.params),
            "current": None if self._current is None else dict(self._current.params),
            "queue": [dict(a.params) for a in self._queue],
            "train": [dict(a.params) for a in self._train.values()],
            "version": self._version,
            "ranked_at": self._ranked_at,
            "model_version": self._model_version,
            "model_seed": self._model_seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()
        make = self.restore_arch
        try:
            self._seen = set(state["seen"])
            self._scores = {k: score_from_json(v) for k, v in state["scores"].items()}
            self._best = None if state["best"] is None else make(state["best"])
            if state["current"] is not None:
                self._current = make(state["current"])
                self._nbrs = {n.key: n for n in self.space.neighbours(self._current)}
            self._queue = [make(p) for p in state["queue"]]
            # states saved before order="predicted" existed have no predictor entries
            self._train = {a.key: a for a in map(make, state.get("train", []))}
            self._version = int(state.get("version", 0))
            self._ranked_at = int(state.get("ranked_at", -1))
            self._model_version = int(state.get("model_version", -1))
            seed = state.get("model_seed")
            self._model_seed = None if seed is None else int(seed)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"cannot restore LocalSearch state: missing or bad entry {exc}") from None


class GuidedLocalSearch(LocalSearch):
    """Local search with predictor-ranked neighbours: :class:`LocalSearch` with ``order="predicted"``.

    Registered as ``guided_local`` (``gls``) so that benchmarks and the CLI can run it next to plain
    ``local``. Best on NAS-Bench-201 at 50 queries (docs/benchmarks.md), at ~45 asks per second:
    worth it when a query is a training run, not for table lookups.

    Args:
        n_initial, first_improvement, n_restart_candidates, predictor, predictor_options, seed: as
            for :class:`LocalSearch`.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.GuidedLocalSearch(seed=0)
    """

    def __init__(
        self,
        *,
        n_initial: int = 10,
        first_improvement: bool = True,
        n_restart_candidates: int = 100,
        predictor: str = "mlp",
        predictor_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            n_initial=n_initial,
            first_improvement=first_improvement,
            order="predicted",
            n_restart_candidates=n_restart_candidates,
            predictor=predictor,
            predictor_options=predictor_options,
            seed=seed,
        )
