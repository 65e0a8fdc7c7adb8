"""Surrogate predictors: learn an architecture's metric from the architectures measured so far.

Every predictor has the scikit-learn shape ``fit(archs, y)`` / ``predict(archs)``, and
``predict_std`` where the model knows its uncertainty. Architectures are encoded by their space:

- ``"onehot"``: :meth:`~nasforge.space.SearchSpace.encode`, one block per dimension (for a cell
  space with fixed edges such as NB201, one op one-hot per edge);
- ``"path"``: ``space.encode(arch, "path")`` where the space offers it (NB201: which of the
  input-to-output paths exist, by their op sequence; the BANANAS paper's best encoding);
- ``"adjacency"``: ``space.encode(arch, "adjacency")`` (NB201: the 4 x 4 node adjacency with an
  op one-hot per entry, flattened);
- ``"auto"`` (default): path where the space has it, else one-hot.

What a space offers is listed in its :attr:`~nasforge.space.SearchSpace.encodings`.

Extra per-architecture features (zero-cost proxy scores, FLOPs) can be appended with
``features=``: an array with one row per architecture, given to ``fit`` and ``predict`` alike.

Example:
    >>> import numpy as np
    >>> from nasforge.space import NB201Space
    >>> space = NB201Space()
    >>> rng = np.random.default_rng(0)
    >>> archs = [space.sample(rng) for _ in range(50)]
    >>> y = [float(space.to_ops(a).count(3)) for a in archs]  # number of 3x3 convolutions
    >>> pred = make_predictor("rf", seed=0).fit(archs, y)
    >>> pred.predict(archs[:3]).shape
    (3,)
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import ConfigError, SpaceError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.estimate._mlp import MLPEnsemble
from nasforge.registry import check_options, suggest

if TYPE_CHECKING:  # scikit-learn is imported when a model is fitted, so that `import nasforge` stays light
    from nasforge.space import Architecture

__all__ = [
    "ENCODINGS",
    "PREDICTORS",
    "GaussianProcessPredictor",
    "GradientBoostingPredictor",
    "MLPEnsemblePredictor",
    "MeanPredictor",
    "Predictor",
    "PredictorEstimator",
    "RandomForestPredictor",
    "encode_architectures",
    "make_predictor",
]

ENCODINGS = ("auto", "onehot", "path", "adjacency")


def encode_architectures(archs: Sequence[Architecture], encoding: str = "auto") -> np.ndarray:
    """Encode ``archs`` (all of one space) as a float32 matrix, one row per architecture.

    Raises:
        ConfigError: an unknown encoding, or one the space does not offer.
    """
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown encoding {encoding!r}; valid encodings: {', '.join(ENCODINGS)}")
    if len(archs) == 0:
        raise ConfigError("no architectures to encode")
    space = archs[0].space
    if encoding == "auto":
        encoding = "path" if "path" in space.encodings else "onehot"
    if encoding not in space.encodings:
        raise ConfigError(
            f"space '{space.name}' has no {encoding} encoding (it offers: {', '.join(space.encodings)}); "
            "use encoding='onehot' (or 'auto')"
        )
    if encoding == "onehot":  # the one-argument call a space written before the kinds overrides
        rows = [space.encode(a) for a in archs]
    else:
        rows = [space.encode(a, encoding) for a in archs]
    return np.asarray(np.stack(rows), dtype=np.float32)


def _check_y(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype=float).reshape(-1)
    if arr.shape[0] != n:
        raise ConfigError(f"fit() got {n} architectures but {arr.shape[0]} targets")
    if not np.all(np.isfinite(arr)):
        raise ConfigError("fit() targets must be finite numbers (drop failed trials first)")
    return arr


class Predictor(ABC):
    """A surrogate model of a metric over architectures (scikit-learn style).

    Args:
        encoding: ``"auto"``, ``"onehot"``, ``"path"`` or ``"adjacency"`` (module docstring).
        seed: seeds the model's randomness.
    """

    #: the registered name
    name = "predictor"

    def __init__(self, *, encoding: str = "auto", seed: int = 0) -> None:
        if encoding not in ENCODINGS:
            raise ConfigError(f"unknown encoding {encoding!r}; valid encodings: {', '.join(ENCODINGS)}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"predictor seed must be an integer >= 0, got {seed!r}")
        self.encoding = encoding
        self.seed = seed
        self._fitted = False
        self._n_features: int | None = None

    def _matrix(self, archs: Sequence[Architecture], features: Any) -> np.ndarray:
        try:
            X = encode_architectures(archs, self.encoding)
        except SpaceError as exc:
            raise ConfigError(f"cannot encode the architectures: {exc}") from None
        if features is not None:
            extra = np.asarray(features, dtype=np.float32)
            if extra.ndim == 1:
                extra = extra[:, None]
            if extra.shape[0] != X.shape[0]:
                raise ConfigError(f"features has {extra.shape[0]} rows for {X.shape[0]} architectures")
            X = np.concatenate([X, extra], axis=1)
        return X

    def fit(self, archs: Sequence[Architecture], y: Any, features: Any = None) -> Predictor:
        """Fit on measured architectures ``archs`` and their metric ``y``; returns self."""
        if len(archs) < 2:
            raise ConfigError(f"a predictor needs at least 2 measured architectures, got {len(archs)}")
        X = self._matrix(archs, features)
        self._fit(X, _check_y(y, len(archs)))
        self._n_features = X.shape[1]
        self._fitted = True
        return self

    def predict(self, archs: Sequence[Architecture], features: Any = None) -> np.ndarray:
        """Predicted metric of ``archs`` (float64, one per architecture)."""
        return self._predict(self._check_fitted(archs, features))[0]

    def rank(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The predictions as scores to rank by (larger = better), so that a fitted predictor can
        pre-screen a search like zero-cost proxies do (:class:`nasforge.strategy.ProxyWarmStart`)."""
        return self.predict(archs)

    def predict_std(self, archs: Sequence[Architecture], features: Any = None) -> np.ndarray | None:
        """The model's uncertainty (standard deviation) per architecture, or None if it has none."""
        return self._predict(self._check_fitted(archs, features))[1]

    def predict_dist(
        self, archs: Sequence[Architecture], features: Any = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`predict` and :meth:`predict_std` in one pass."""
        return self._predict(self._check_fitted(archs, features))

    def _check_fitted(self, archs: Sequence[Architecture], features: Any) -> np.ndarray:
        if not self._fitted:
            raise ConfigError(f"{type(self).__name__}.predict() needs fit() first")
        X = self._matrix(archs, features)
        if X.shape[1] != self._n_features:
            raise ConfigError(
                f"predict() got {X.shape[1]} features per architecture, fit() had {self._n_features}: "
                "pass the same kind of features (and the same space) to both"
            )
        return X

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class MeanPredictor(Predictor):
    """The constant baseline: predicts the mean of the training targets."""

    name = "mean"

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._mean, self._std = float(y.mean()), float(y.std())

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = X.shape[0]
        return np.full(n, self._mean), np.full(n, self._std)


class GradientBoostingPredictor(Predictor):
    """Gradient-boosted regression trees (scikit-learn ``GradientBoostingRegressor``).

    Args:
        n_estimators, max_depth, learning_rate, subsample: the booster's settings.
        encoding, seed: see :class:`Predictor`.
    """

    name = "gbm"

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        encoding: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__(encoding=encoding, seed=seed)
        self.options = {
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "subsample": subsample,
        }

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import GradientBoostingRegressor

        try:
            self._model = GradientBoostingRegressor(random_state=self.seed, **self.options).fit(X, y)
        except ValueError as exc:  # scikit-learn's parameter validation
            raise ConfigError(f"gbm predictor: {exc}") from None

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return np.asarray(self._model.predict(X), dtype=float), None


class RandomForestPredictor(Predictor):
    """A random forest (scikit-learn); the spread of its trees is the uncertainty.

    Args:
        n_estimators, min_samples_leaf, max_features: the forest's settings.
        encoding, seed: see :class:`Predictor`.
    """

    name = "rf"

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 1,
        max_features: float = 0.5,
        encoding: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__(encoding=encoding, seed=seed)
        self.options = {
            "n_estimators": n_estimators,
            "min_samples_leaf": min_samples_leaf,
            "max_features": max_features,
        }

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor

        try:
            self._model = RandomForestRegressor(random_state=self.seed, n_jobs=1, **self.options).fit(X, y)
        except ValueError as exc:
            raise ConfigError(f"rf predictor: {exc}") from None

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        per_tree = np.stack([t.predict(X) for t in self._model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


class MLPEnsemblePredictor(Predictor):
    """An ensemble of small ReLU MLPs (the BANANAS predictor); the members' spread is the uncertainty.

    Args:
        n_models, hidden, epochs, lr, weight_decay: see :class:`~nasforge.estimate._mlp.MLPEnsemble`.
        encoding, seed: see :class:`Predictor`.
    """

    name = "mlp"

    def __init__(
        self,
        *,
        n_models: int = 5,
        hidden: Sequence[int] = (32, 32),
        epochs: int = 200,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        encoding: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__(encoding=encoding, seed=seed)
        self._ensemble = MLPEnsemble(
            n_models=n_models, hidden=hidden, epochs=epochs, lr=lr, weight_decay=weight_decay
        )

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self._ensemble.fit(X, y, np.random.default_rng(self.seed))

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        preds = self._ensemble.predict(X)
        return preds.mean(axis=0), preds.std(axis=0)


class GaussianProcessPredictor(Predictor):
    """A Gaussian process (scikit-learn): Matern-5/2 kernel plus white noise, hyperparameters by
    maximum likelihood, targets normalised; its posterior standard deviation is the uncertainty.

    Args:
        restarts: optimiser restarts of the kernel hyperparameters.
        encoding, seed: see :class:`Predictor`.
    """

    name = "gp"

    def __init__(self, *, restarts: int = 0, encoding: str = "auto", seed: int = 0) -> None:
        super().__init__(encoding=encoding, seed=seed)
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
            raise ConfigError(f"gp restarts must be an integer >= 0, got {restarts!r}")
        self.restarts = restarts

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0) * Matern(length_scale=np.sqrt(X.shape[1]), nu=2.5) + WhiteKernel(0.1)
        gp = GaussianProcessRegressor(
            kernel=kernel, normalize_y=True, n_restarts_optimizer=self.restarts, random_state=self.seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model = gp.fit(X.astype(np.float64), y)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        mean, std = self._model.predict(X.astype(np.float64), return_std=True)
        return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)


PREDICTORS: dict[str, type[Predictor]] = {
    "gbm": GradientBoostingPredictor,
    "rf": RandomForestPredictor,
    "mlp": MLPEnsemblePredictor,
    "gp": GaussianProcessPredictor,
    "mean": MeanPredictor,
}


def make_predictor(name: str, **options: Any) -> Predictor:
    """Create a predictor by name: ``gbm``, ``rf``, ``mlp``, ``gp`` or ``mean`` (the baseline)."""
    cls = PREDICTORS.get(name)
    if cls is None:
        raise ConfigError(
            f"unknown predictor {name!r}.{suggest(name, list(PREDICTORS))} "
            f"Valid predictors: {', '.join(PREDICTORS)}."
        )
    check_options("predictor", name, cls, options)
    return cls(**options)


class PredictorEstimator(Estimator):
    """A fitted predictor as an estimator: each trial costs a prediction, not a training.

    Args:
        predictor: a fitted :class:`Predictor`.
        metric: the name of the returned metric (use it as the objective).

    Example:
        >>> rf = make_predictor("rf").fit(archs, accs)  # doctest: +SKIP
        >>> est = PredictorEstimator(rf, metric="val_accuracy")  # doctest: +SKIP
    """

    def __init__(self, predictor: Predictor, *, metric: str = "predicted") -> None:
        if not isinstance(predictor, Predictor):
            raise ConfigError(f"PredictorEstimator needs a Predictor, got {type(predictor).__name__}")
        if not predictor._fitted:
            raise ConfigError("PredictorEstimator needs a fitted predictor: call predictor.fit(archs, y)")
        self.predictor = predictor
        self.metric = metric

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        means, std = self.predictor.predict_dist([arch])
        out = {self.metric: float(means[0])}
        if std is not None:
            out[f"{self.metric}_std"] = float(std[0])
        return out
