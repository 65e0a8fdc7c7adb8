"""Performance estimation: estimators, the trial context and training."""

from nasforge.estimate._base import Estimator, TrialContext
from nasforge.estimate._train import TrainedModel, TrainEstimator, train_final

__all__ = ["Estimator", "TrainEstimator", "TrainedModel", "TrialContext", "train_final"]
