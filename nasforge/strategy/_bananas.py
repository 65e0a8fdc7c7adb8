"""BANANAS: Bayesian optimisation with an ensemble of neural predictors, White et al. 2021."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._checks import check_int
from nasforge.errors import ConfigError, SpaceError
from nasforge.estimate._mlp import MLPEnsemble
from nasforge.estimate._predictors import encode_architectures
from nasforge.space import Architecture
from nasforge.strategy._base import Strategy
from nasforge.strategy._predictor import check_predictor, fit_predictor, predict_dist
from nasforge.strategy._util import sample_unseen
from nasforge.trial import Trial, TrialState

if TYPE_CHECKING:
    from nasforge.estimate import Predictor

__all__ = ["Bananas"]

_ACQUISITIONS = ("its", "ucb", "mean")


class Bananas(Strategy):
    """Predictor-guided search: an ensemble of MLPs, mutation candidates, Thompson sampling.

    White, Neiswanger, Savani, "BANANAS: Bayesian optimization with neural architectures for neural
    architecture search" (AAAI 2021). After ``n_initial`` random architectures (trials told from a
    warm start count), each round fits an
    ensemble of ``n_models`` MLPs (:class:`MLPEnsemble`) on the encodings of the completed trials,
    makes up to ``n_candidates`` unseen candidates by mutating the ``top_k`` best architectures,
    scores them with the acquisition function over the ensemble's mean and standard deviation and
    queues the best ``batch``. Acquisitions: ``"its"`` (independent Thompson sampling, the paper's
    choice: one draw from ``N(mean, std)`` per candidate), ``"ucb"`` (``mean + std``), ``"mean"``.

    Encoding: ``space.encode(arch, "path")`` when the space offers it (the paper's best encoding,
    for cell spaces), else the one-hot ``space.encode(arch)``. The ensemble is refitted when at least
    ``refit_every`` new results arrived since the last fit. Failed and infeasible trials are left
    out of the training set.

    The predictor is smaller than the paper's (10 layers of width 20, 200 epochs): 2 hidden layers
    of 20 units trained for 100 full-batch epochs fit the one-hot encodings of the 8 x 5 additive
    test space as well (held-out correlation 0.99 from 150 points) in about 25 ms per 5-model fit,
    so a 300-trial search runs at ~35 asks per second. Raise ``refit_every`` (or ``batch``) to go
    faster on large budgets.

    The state keeps the told history (params and score) and the seed of the last fit, so a resumed
    strategy refits the same model and continues identically.

    Args:
        n_initial: random architectures before the first model (>= 2).
        n_models: ensemble size (>= 1).
        n_candidates: mutation candidates per round (>= 1).
        top_k: how many of the best architectures are mutated (>= 1).
        acquisition: ``"its"``, ``"ucb"`` or ``"mean"``.
        batch: architectures proposed per round (>= 1).
        refit_every: new results needed before the ensemble is refitted (>= 1).
        epochs: training steps of each fit (>= 1).
        hidden: hidden-layer widths of the MLPs.
        predictor: ``"mlp"`` (the ensemble above, the paper's) or another surrogate of
            :func:`nasforge.estimate.make_predictor`: ``"gbm"``, ``"rf"``, ``"gp"`` (on the same
            encoding; ``n_models``, ``hidden`` and ``epochs`` then do not apply). Thompson sampling
            and UCB use the predictor's own uncertainty (random forest: spread of the trees, GP:
            posterior); gradient boosting has none, so its acquisition is its mean.
        predictor_options: options of that predictor (e.g. ``{"n_estimators": 200}``).
        seed: random seed.

    Example:
        >>> import nasforge as nf
        >>> strategy = nf.strategy.Bananas(n_initial=10, n_candidates=100, seed=0)
    """

    def __init__(
        self,
        *,
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
        super().__init__(seed=seed)
        check_int("bananas n_initial", n_initial, 2)
        check_int("bananas n_models", n_models, 1)
        check_int("bananas n_candidates", n_candidates, 1)
        check_int("bananas top_k", top_k, 1)
        check_int("bananas batch", batch, 1)
        check_int("bananas refit_every", refit_every, 1)
        check_int("bananas epochs", epochs, 1)
        if acquisition not in _ACQUISITIONS:
            raise ConfigError(
                f"bananas acquisition must be one of {', '.join(_ACQUISITIONS)}, got {acquisition=}"
            )
        if (
            isinstance(hidden, (str, bytes))
            or not isinstance(hidden, Sequence)
            or not hidden
            or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)
        ):
            raise ConfigError(f"bananas hidden must be a list of positive layer widths, got {hidden=}")
        self.n_initial = n_initial
        self.n_models = n_models
        self.n_candidates = n_candidates
        self.top_k = top_k
        self.acquisition = acquisition
        self.batch = batch
        self.refit_every = refit_every
        self.epochs = epochs
        self.hidden = hidden
        self.predictor, self.predictor_options = check_predictor(predictor, predictor_options)
        self._reset()

    def _reset(self) -> None:
        self._seen: set[str] = set()
        self._history: list[tuple[Architecture, float]] = []  # completed, finite scores, in tell order
        self._queue: list[Architecture] = []
        self._model: MLPEnsemble | Predictor | None = None
        self._model_n = 0  # history entries the model was fitted on
        self._model_seed: int | None = None
        self._codes: dict[str, np.ndarray] = {}

    def on_setup(self) -> None:
        self._reset()

    # ------------------------------------------------------------------ predictor
    def _encode(self, archs: Sequence[Architecture], *, cache: bool = False) -> np.ndarray:
        rows = []
        for a in archs:
            code = self._codes.get(a.key)
            if code is None:
                code = encode_architectures([a])[0]
                if cache:  # the training set is encoded at every fit; candidates are not kept
                    self._codes[a.key] = code
            rows.append(code)
        return np.stack(rows)

    def _n_results(self) -> int:
        """Results told so far (the model is refitted when this grows by ``refit_every``)."""
        return len(self._history)

    def _data(self, n: int) -> list[tuple[Architecture, float]]:
        """The training set made of the first ``n`` results: (architecture, score) pairs."""
        return self._history[:n]

    def _fit(self, n: int, seed: int) -> None:
        data = self._data(n)
        y = np.array([s for _, s in data])
        if self.predictor == "mlp":
            X = self._encode([a for a, _ in data], cache=True)
            ens = MLPEnsemble(n_models=self.n_models, hidden=self.hidden, epochs=self.epochs)
            self._model = ens.fit(X, y, np.random.default_rng(seed))
        else:
            self._model = fit_predictor(self.predictor, self.predictor_options, [a for a, _ in data], y, seed)
        self._model_n, self._model_seed = n, seed

    def _ensure_model(self) -> MLPEnsemble | Predictor:
        due = self._n_results() - self._model_n >= self.refit_every
        if due or self._model_seed is None:
            self._fit(self._n_results(), int(self.rng.integers(2**62)))
        elif self._model is None:  # resumed: refit exactly what was fitted before the stop
            self._fit(self._model_n, self._model_seed)
        assert self._model is not None
        return self._model

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's mean and standard deviation of the score of ``archs``.

        Fits the ensemble first if results arrived since the last fit (drawing a seed from the
        strategy's generator, as the next ask would have).

        Raises:
            ConfigError: before two trials have completed (nothing to fit).
        """
        if len(self._data(self._n_results())) < 2:
            raise ConfigError(f"{type(self).__name__}.predict() needs at least two completed trials")
        model = self._ensure_model()
        if isinstance(model, MLPEnsemble):
            preds = model.predict(self._encode(archs))
            return preds.mean(axis=0), preds.std(axis=0)
        return predict_dist(model, archs)

    # ------------------------------------------------------------------ ask / tell
    def _candidates(self) -> list[Architecture]:
        data = self._data(self._n_results())
        ranked = sorted(range(len(data)), key=lambda i: -data[i][1])  # stable: ties by age
        parents = [data[i][0] for i in ranked[: self.top_k]]
        out: dict[str, Architecture] = {}
        for i in range(self.n_candidates):
            try:
                child = self.space.mutate(parents[i % len(parents)], self.rng)
            except SpaceError:  # no valid mutant of this parent
                continue
            if child.key not in self._seen and child.key not in out:
                out[child.key] = child
        return list(out.values())

    def _round(self) -> None:
        cands = self._candidates()
        if not cands:
            return
        mean, std = self.predict(cands)
        if self.acquisition == "its":
            acq = mean + std * self.rng.standard_normal(len(cands))
        elif self.acquisition == "ucb":
            acq = mean + std
        else:
            acq = mean
        order = np.argsort(-acq, kind="stable")[: self.batch]
        self._queue = [cands[int(i)] for i in order]

    def _take(self) -> Architecture | None:
        while self._queue:
            arch = self._queue.pop(0)
            if arch.key not in self._seen:
                self._seen.add(arch.key)
                return arch
        return None

    def _propose_random(self) -> Architecture | None:
        arch = sample_unseen(self.space, self.rng, self._seen)
        if arch is not None:
            self._seen.add(arch.key)
        return arch

    def ask(self) -> Architecture | None:
        arch = self._take()
        if arch is not None:
            return arch
        if len(self._seen) < self.n_initial:  # warm-start trials count towards the initial ones
            return self._propose_random()
        if len(self._data(self._n_results())) < 2:  # nothing to fit yet (asynchronous start, failures)
            return self._propose_random()
        self._round()
        return self._take() or self._propose_random()

    def tell(self, trial: Trial) -> None:
        self._seen.add(trial.architecture.key)
        if trial.state is TrialState.COMPLETE:
            score = self.objective.score(trial)
            if math.isfinite(score):
                self._history.append((trial.architecture, score))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "seen": sorted(self._seen),
            "history": [[dict(a.params), s] for a, s in self._history],
            "queue": [dict(a.params) for a in self._queue],
            "model_n": self._model_n,
            "model_seed": self._model_seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._reset()
        make = self.restore_arch
        try:
            self._seen = set(state["seen"])
            self._history = [(make(p), float(s)) for p, s in state["history"]]
            self._queue = [make(p) for p in state["queue"]]
            self._model_n = int(state["model_n"])
            seed = state["model_seed"]
            self._model_seed = None if seed is None else int(seed)
            self._load_extra(state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"cannot restore {type(self).__name__} state: missing or bad entry {exc}"
            ) from None
        if self._model_n > self._n_results():
            raise ConfigError(
                f"cannot restore {type(self).__name__} state: the model was fitted on {self._model_n} "
                f"results but the history holds {self._n_results()}"
            )

    def _load_extra(self, state: dict[str, Any]) -> None:
        """Hook for subclasses: restore their own entries of ``state`` (after the base ones)."""
