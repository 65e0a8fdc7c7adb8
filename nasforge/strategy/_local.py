"""Local search (hill climbing with random restarts), White et al. 2020."""

from __future__ import annotations

import itertools
import math
from typing import Any

from nasforge.errors import ConfigError
from nasforge.experiment._trial import Trial, TrialState
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._util import check_int, sample_unseen, score_from_json, score_to_json

__all__ = ["LocalSearch"]


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

    Works asynchronously: ``ask`` may be called before earlier trials are told; pending proposals
    are never proposed again, and while the current point's neighbourhood waits for results the
    strategy proposes random architectures. Neighbours already evaluated (for instance as initial
    samples) count without being re-evaluated.

    Args:
        n_initial: random architectures before the first climb (>= 1).
        first_improvement: move to the first improving neighbour (True) or only after the whole
            neighbourhood is evaluated (False).
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.LocalSearch(n_initial=10, seed=0)
    """

    def __init__(
        self, *, n_initial: int = 10, first_improvement: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(seed=seed)
        check_int("local search n_initial", n_initial, 1)
        if not isinstance(first_improvement, bool):
            raise ConfigError(f"local search first_improvement must be a bool, got {first_improvement=}")
        self.n_initial = n_initial
        self.first_improvement = first_improvement
        self._reset()

    def _reset(self) -> None:
        self._seen: set[str] = set()  # proposed or told
        self._scores: dict[str, float] = {}  # told keys -> best score seen for them
        self._best: Architecture | None = None
        self._current: Architecture | None = None
        self._queue: list[Architecture] = []
        self._nbrs: dict[str, Architecture] = {}  # the current point's neighbourhood, by key

    def on_setup(self) -> None:
        self._reset()

    # ------------------------------------------------------------------ internals
    def _propose_random(self) -> Architecture | None:
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
        self._queue = [untried[int(i)] for i in self.rng.permutation(len(untried))]

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
        self._scores[arch.key] = score if old is None else max(old, score)
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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()

        def make(params: dict[str, Any]) -> Architecture:
            return self.space.make(params, check_constraints=False)

        try:
            self._seen = set(state["seen"])
            self._scores = {k: score_from_json(v) for k, v in state["scores"].items()}
            self._best = None if state["best"] is None else make(state["best"])
            if state["current"] is not None:
                self._current = make(state["current"])
                self._nbrs = {n.key: n for n in self.space.neighbours(self._current)}
            self._queue = [make(p) for p in state["queue"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot restore LocalSearch state: missing or bad entry {exc}") from None
