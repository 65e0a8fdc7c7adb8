"""Regularized (aging) evolution, Real et al. 2019, with optional uniform crossover."""

from __future__ import annotations

from collections import deque
from typing import Any

from nasforge._checks import check_int
from nasforge.errors import ConfigError
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._util import score_from_json, score_to_json
from nasforge.trial import Trial, TrialState

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Strategy):
    """Tournament selection, mutation and aging.

    Until ``population`` trials have completed, architectures are sampled at random. After that,
    each ask draws ``tournament`` members of the population, mutates the best (or, with probability
    ``crossover``, crosses the winners of two tournaments and mutates the child if it equals a
    parent), and each completed trial joins the population while the oldest member leaves.

    Args:
        population: population size (>= 2).
        tournament: tournament (sample) size, 1 <= tournament <= population.
        crossover: probability of producing a child by crossover instead of mutation, in [0, 1].
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.RegularizedEvolution(population=20, tournament=5, seed=0)
    """

    def __init__(
        self, *, population: int = 20, tournament: int = 5, crossover: float = 0.0, seed: int | None = None
    ) -> None:
        super().__init__(seed=seed)
        check_int("population", population, 2)
        if (
            isinstance(tournament, bool)
            or not isinstance(tournament, int)
            or not 1 <= tournament <= population
        ):
            raise ConfigError(
                f"evolution tournament must be an integer between 1 and population ({population}), "
                f"got {tournament=}"
            )
        if not 0.0 <= crossover <= 1.0:
            raise ConfigError(f"evolution crossover must be a probability in [0, 1], got {crossover=}")
        self.population = population
        self.tournament = tournament
        self.crossover = crossover
        self._pop: deque[tuple[Architecture, float]] = deque(maxlen=population)

    def _select(self) -> Architecture:
        idx = self.rng.choice(len(self._pop), size=min(self.tournament, len(self._pop)), replace=False)
        return max((self._pop[int(i)] for i in idx), key=lambda m: m[1])[0]

    def ask(self) -> Architecture | None:
        if len(self._pop) < self.population:
            return self.space.sample(self.rng)
        if self.crossover and self.rng.random() < self.crossover:
            a, b = self._select(), self._select()
            child = self.space.crossover(a, b, self.rng)
            if child.key in (a.key, b.key):
                child = self.space.mutate(child, self.rng)
            return child
        return self.space.mutate(self._select(), self.rng)

    def tell(self, trial: Trial) -> None:
        if trial.state is TrialState.COMPLETE:
            self._pop.append((trial.architecture, self.objective.score(trial)))

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "population": [{"params": dict(a.params), "score": score_to_json(s)} for a, s in self._pop],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._pop.clear()
        for member in state.get("population", []):
            score = member["score"]
            self._pop.append((self.space.make(member["params"]), score_from_json(score)))
