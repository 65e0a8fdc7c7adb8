"""Multi-fidelity strategies: successive halving, Hyperband and BOHB.

Each is a strategy that brings its own early-stopping scheduler (the experiment attaches it): the
architectures are proposed as usual, every trial reports its value after each epoch (training) or
at the scheduler's rungs (the NAS-Bench-301 surrogate), and unpromising trials are stopped early.
Only trials that ran the full budget complete; the pick is the best of those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nasforge._checks import check_int
from nasforge._seeds import derive_seed
from nasforge.errors import ConfigError
from nasforge.space import Architecture
from nasforge.strategy._bananas import Bananas
from nasforge.strategy._random import RandomSearch
from nasforge.strategy._schedulers import Hyperband, SuccessiveHalving
from nasforge.trial import Trial, TrialState

__all__ = ["BOHB", "HyperbandSearch", "SuccessiveHalvingSearch"]


def _scheduler_seed(seed: int | None) -> int:
    return derive_seed(0 if seed is None else int(seed), 7)


class SuccessiveHalvingSearch(RandomSearch):
    """Random architectures under asynchronous successive halving (ASHA, Li et al. 2020).

    Args:
        min_resource: the first rung, in reported steps (epochs) (>= 1).
        eta: reduction factor (>= 2): a third of the trials go on at each rung for 3.
        max_resource: the full budget; default: the estimator's (its epochs).
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.SuccessiveHalvingSearch(min_resource=1, eta=3, seed=0)
        >>> strategy.scheduler.min_resource
        1
    """

    def __init__(
        self,
        *,
        min_resource: int = 1,
        eta: int = 3,
        max_resource: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.scheduler = SuccessiveHalving(min_resource=min_resource, eta=eta, max_resource=max_resource)


class HyperbandSearch(RandomSearch):
    """Random architectures under Hyperband (Li et al. 2018): successive halving in several brackets.

    Args:
        min_resource: the most aggressive bracket's first rung (>= 1).
        eta: reduction factor (>= 2).
        max_resource: the full budget; default: the estimator's (its epochs).
        seed: random seed (the bracket assignment derives from it).

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.HyperbandSearch(eta=3, max_resource=27, seed=0)
        >>> strategy.scheduler.bracket_weights()
        [27, 18, 6, 4]
    """

    def __init__(
        self,
        *,
        min_resource: int = 1,
        eta: int = 3,
        max_resource: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        self.scheduler = Hyperband(
            min_resource=min_resource, eta=eta, max_resource=max_resource, seed=_scheduler_seed(seed)
        )


class BOHB(Bananas):
    """BOHB (Falkner et al. 2018): Hyperband, with a model proposing the architectures.

    Hyperband decides how long each trial runs (:class:`~nasforge.strategy.Hyperband`). What to run
    comes from the predictor-guided search of :class:`~nasforge.strategy.Bananas` (an MLP ensemble
    on path / one-hot encodings, mutation candidates, Thompson sampling) in place of BOHB's
    kernel density estimator. As in BOHB, the model is fitted on the results of the largest budget
    that has at least ``min_points`` of them: completed trials count at the full budget, every
    trial counts at each step it reported. A share ``random_fraction`` of the proposals stays
    uniformly random (BOHB's guard for its convergence guarantee).

    Args:
        min_resource: the most aggressive bracket's first rung (>= 1).
        eta: reduction factor (>= 2).
        max_resource: the full budget; default: the estimator's (its epochs).
        min_points: results a budget needs before the model is fitted on it (>= 2).
        random_fraction: share of uniformly random proposals after the initial ones, in [0, 1].
        n_initial, n_models, n_candidates, top_k, acquisition, batch, refit_every, epochs,
            hidden, predictor, predictor_options: as for :class:`~nasforge.strategy.Bananas`.
        seed: random seed (the bracket assignment derives from it).

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.BOHB(eta=3, seed=0)
    """

    def __init__(
        self,
        *,
        min_resource: int = 1,
        eta: int = 3,
        max_resource: int | None = None,
        min_points: int = 10,
        random_fraction: float = 1 / 3,
        n_initial: int = 10,
        n_models: int = 5,
        n_candidates: int = 100,
        top_k: int = 10,
        acquisition: str = "its",
        batch: int = 1,
        refit_every: int = 1,
        epochs: int = 100,
        hidden: Sequence[int] = (20, 20),
        predictor: str = "mlp",
        predictor_options: Mapping[str, Any] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            n_initial=n_initial,
            n_models=n_models,
            n_candidates=n_candidates,
            top_k=top_k,
            acquisition=acquisition,
            batch=batch,
            refit_every=refit_every,
            epochs=epochs,
            hidden=hidden,
            predictor=predictor,
            predictor_options=predictor_options,
            seed=seed,
        )
        check_int("bohb min_points", min_points, 2)
        if (
            isinstance(random_fraction, bool)
            or not isinstance(random_fraction, (int, float))
            or not 0 <= random_fraction <= 1
        ):
            raise ConfigError(f"bohb random_fraction must be a number in [0, 1], got {random_fraction=}")
        self.min_points = min_points
        self.random_fraction = float(random_fraction)
        self.scheduler = Hyperband(
            min_resource=min_resource, eta=eta, max_resource=max_resource, seed=_scheduler_seed(seed)
        )

    def _reset(self) -> None:
        super()._reset()
        # every told trial with a result: (architecture, signed value per reported step, signed
        # final score if it completed), in tell order
        self._obs: list[tuple[Architecture, dict[int, float], float | None]] = []

    # ------------------------------------------------------------------ the model's data
    def _n_results(self) -> int:
        return len(self._obs)

    def _data(self, n: int) -> list[tuple[Architecture, float]]:
        obs = self._obs[:n]
        full = [(a, f) for a, _, f in obs if f is not None]
        if len(full) >= self.min_points:
            return full
        levels: dict[int, list[tuple[Architecture, float]]] = {}
        for a, steps, _ in obs:
            for step, v in steps.items():
                levels.setdefault(step, []).append((a, v))
        for step in sorted(levels, reverse=True):  # the largest budget with enough results
            if len(levels[step]) >= self.min_points:
                return levels[step]
        candidates = [full, *levels.values()]
        return max(candidates, key=len)  # too few anywhere: the best-populated budget

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Architecture | None:
        arch = self._take()
        if arch is not None:
            return arch
        if len(self._seen) >= self.n_initial and self.rng.random() < self.random_fraction:
            return self._propose_random()
        return super().ask()

    def tell(self, trial: Trial) -> None:
        self._seen.add(trial.architecture.key)
        if trial.state is TrialState.FAIL:
            return
        sign = 1.0 if self.objective.directions[0] == "maximize" else -1.0
        steps = {int(s): sign * float(v) for s, v in trial.intermediate.items() if math.isfinite(float(v))}
        final = None
        if trial.state is TrialState.COMPLETE:
            score = self.objective.score(trial)
            final = score if math.isfinite(score) else None
        if steps or final is not None:
            self._obs.append((trial.architecture, steps, final))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "obs": [[dict(a.params), {str(k): v for k, v in s.items()}, f] for a, s, f in self._obs],
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        self._obs = [
            (
                self.restore_arch(p),
                {int(k): float(v) for k, v in steps.items()},
                None if f is None else float(f),
            )
            for p, steps, f in state["obs"]
        ]
