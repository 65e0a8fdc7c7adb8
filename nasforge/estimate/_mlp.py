"""A small ensemble of ReLU MLP regressors in numpy: the score model of BANANAS and the guided local
search, and the ``mlp`` predictor (:class:`~nasforge.estimate.MLPEnsemblePredictor`).

It lives in the estimate layer so that both the predictors and the strategies above them can use it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from nasforge.errors import ConfigError

__all__ = ["MLPEnsemble"]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


class MLPEnsemble:
    """Small ReLU MLP regressors trained together, vectorised over the ensemble (numpy only).

    Each member has its own random initialisation (the only source of diversity, as in BANANAS);
    all are trained with full-batch Adam (in float32) on the mean squared error of standardised
    targets.

    Args:
        n_models: ensemble size.
        hidden: widths of the hidden layers.
        epochs: full-batch Adam steps.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.random((50, 4)); y = X.sum(1)
        >>> ens = MLPEnsemble(n_models=3).fit(X, y, rng)
        >>> ens.predict(X).shape
        (3, 50)
    """

    def __init__(
        self,
        n_models: int = 5,
        hidden: Sequence[int] = (20, 20),
        epochs: int = 100,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
    ) -> None:
        self.n_models = n_models
        self.hidden = tuple(hidden)
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self._w: list[np.ndarray] = []
        self._b: list[np.ndarray] = []
        self._y_mean = 0.0
        self._y_std = 1.0

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> MLPEnsemble:
        """Train every member from a fresh initialisation drawn from ``rng``."""
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        self._y_mean = float(y.mean())
        self._y_std = float(y.std()) or 1.0
        t = ((y - self._y_mean) / self._y_std).astype(np.float32)[None, :, None]  # (1, N, 1)
        sizes = [X.shape[1], *self.hidden, 1]
        E = self.n_models
        # one flat parameter vector (and one for its gradient) so that Adam is a few vector ops
        shapes = [(E, a, b) for a, b in itertools.pairwise(sizes)]
        shapes += [(E, 1, b) for b in sizes[1:]]
        total = sum(math.prod(sh) for sh in shapes)
        theta, grads = np.zeros(total, np.float32), np.zeros(total, np.float32)
        views, gviews, pos = [], [], 0
        for sh in shapes:
            size = math.prod(sh)
            views.append(theta[pos : pos + size].reshape(sh))
            gviews.append(grads[pos : pos + size].reshape(sh))
            pos += size
        n_layers = len(sizes) - 1
        self._w, self._b = views[:n_layers], views[n_layers:]
        for w in self._w:
            w[...] = rng.standard_normal(w.shape) * math.sqrt(2.0 / w.shape[1])
        gw, gb = gviews[:n_layers], gviews[n_layers:]
        m, v = np.zeros(total, np.float32), np.zeros(total, np.float32)
        n = X.shape[0]
        ones = np.ones((1, n), np.float32)  # bias gradients as a matmul: much faster than sum()
        for step in range(1, self.epochs + 1):
            acts = self._forward(X)
            grad = 2.0 * (acts[-1] - t) / n  # d MSE / d output, (E, N, 1)
            for layer in range(n_layers - 1, -1, -1):
                a_in = acts[layer]
                a_t = a_in.T if layer == 0 else a_in.transpose(0, 2, 1)
                np.matmul(a_t, grad, out=gw[layer])
                gw[layer] += self.weight_decay * self._w[layer]
                np.matmul(ones, grad, out=gb[layer])
                if layer:
                    grad = (grad @ self._w[layer].transpose(0, 2, 1)) * (a_in > 0)
            m *= _BETA1
            m += (1 - _BETA1) * grads
            v *= _BETA2
            v += (1 - _BETA2) * grads * grads
            c1, c2 = 1 - _BETA1**step, 1 - _BETA2**step
            theta -= (self.lr / c1) * m / (np.sqrt(v / c2) + _EPS)
        return self

    def _forward(self, X: np.ndarray) -> list[np.ndarray]:
        acts: list[np.ndarray] = [X]
        h: np.ndarray = X
        last = len(self._w) - 1
        for layer, (w, b) in enumerate(zip(self._w, self._b, strict=True)):
            z = h @ w + b  # (N, D) @ (E, D, H) broadcasts to (E, N, H)
            h = z if layer == last else np.maximum(z, 0.0)
            acts.append(h)
        return acts

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions of every member, shape (n_models, n_points), in the targets' units."""
        if not self._w:
            raise ConfigError("MLPEnsemble.predict() needs fit() first")
        out = self._forward(np.asarray(X, dtype=np.float32))[-1][:, :, 0]
        return out.astype(np.float64) * self._y_std + self._y_mean
