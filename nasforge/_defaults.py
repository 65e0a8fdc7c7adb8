"""Defaults that more than one module states: each number lives here once.

The search config (:data:`nasforge.config.SMALL_BUDGET` / ``LARGE_BUDGET``) holds what the CLI and
YAML use per dataset size; the Python API's constructors and functions default to these. Changing
one here changes every place that means the same thing.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FINAL_EPOCHS",
    "DEFAULT_LR",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SUPERNET_EPOCHS",
    "DEFAULT_TRIAL_EPOCHS",
    "DEFAULT_WEIGHT_DECAY",
    "MAX_WARMUP_SHARE",
]

#: training epochs of one search trial (``TrainEstimator``, ``TrainBudget``; the config's
#: ``SMALL_BUDGET`` estimator says the same)
DEFAULT_TRIAL_EPOCHS = 10
#: training epochs of the final training called from Python (``train_final``, ``train_detector``)
DEFAULT_FINAL_EPOCHS = 30
#: training epochs of a weight-sharing supernet (``SupernetEstimator``, ``DARTS``, ``GDAS``)
DEFAULT_SUPERNET_EPOCHS = 10

# The recipe that trains a classifier, in a trial (TrainEstimator, TrainBudget) and finally (train_final).
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 3e-3
DEFAULT_OPTIMIZER = "adam"
DEFAULT_WEIGHT_DECAY = 5e-4
DEFAULT_SCHEDULE = "cosine"

#: the largest share of a training's epochs its learning-rate warm-up may take: the schedule needs
#: the rest to decay (a cosine that starts at the last step would never lower the rate)
MAX_WARMUP_SHARE = 0.5
