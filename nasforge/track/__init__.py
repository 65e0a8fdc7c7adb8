"""Tracking callbacks: follow a search in TensorBoard or MLflow while it runs.

Each is a plain callback ``tracker(experiment, trial)`` for ``Experiment.run(callbacks=[...])``;
``nasforge search --track tensorboard --track mlflow`` (or ``track:`` in the config) adds them.
The packages are optional extras, imported only when a tracker first writes:
``pip install 'nasforge[tensorboard]'`` / ``'nasforge[mlflow]'``. A tracker that fails (a bad URI,
a full disk) warns once with :class:`TrackingWarning` and the search goes on without it.

Example:
    >>> import nasforge as nf
    >>> from nasforge.track import make_tracker
    >>> tb = make_tracker("tensorboard")  # doctest: +SKIP
    >>> exp.run(strategy="random", estimator=est, n_trials=20, callbacks=[tb])  # doctest: +SKIP
    >>> tb.close()  # doctest: +SKIP
"""

from __future__ import annotations

from nasforge.track._base import Tracker, TrackingWarning, make_tracker
from nasforge.track._mlflow import MLflowCallback
from nasforge.track._tensorboard import TensorBoardCallback

__all__ = ["MLflowCallback", "TensorBoardCallback", "Tracker", "TrackingWarning", "make_tracker"]
