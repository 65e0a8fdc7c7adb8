"""The whole NAS loop through nasforge's public API: space, search, final training, saved weights.

Run: python examples/minimal_nas.py   (1-2 minutes on 2 CPU cores; digits ships with scikit-learn)
"""

from __future__ import annotations

import nasforge as nf

# 1. The data: 8x8 handwritten digits, split into train / validation / test.
task = nf.datasets.load("digits")
print(task.describe())

# 2. The search space: 2 to 4 layers, each a conv, separable conv or max-pool with its own
#    filters, kernel, stride, activation and an optional residual skip; at most 50k parameters.
space = nf.spaces.ChainCNN(
    depth=nf.IntRange(2, 4),
    layer=dict(
        op=nf.Choice(["conv", "sepconv", "maxpool"]),
        filters=nf.Choice([16, 32, 64]),
        kernel=nf.Choice([3, 5]),
        stride=nf.Choice([1, 2]),
        act=nf.Choice(["relu", "hardswish"]),
        skip=nf.Choice([False, True]),
    ),
    constraints=[nf.MaxParams(50_000)],
)

# 3. How a candidate is judged: 8 epochs of training, validation accuracy.
estimator = nf.TrainEstimator(task, epochs=8, batch_size=32, lr=0.01)

# 4. The search: regularized evolution, 16 trials, stored in memory (pass run_dir= to keep it).
exp = nf.Experiment("minimal", space=space, objectives=["val_accuracy"], seed=0)
exp.run(
    strategy=nf.strategy.RegularizedEvolution(population=8, tournament=3, seed=0),
    estimator=estimator,
    n_trials=16,
)

for trial in exp.leaderboard(top=3):
    print(
        f"trial {trial.number}: val {trial.metrics['val_accuracy']:.3f}  "
        f"{trial.metrics['params']:>6,} params  {space.describe(trial.architecture)}"
    )

# 5. Train the pick with a full budget; the test split is used only now.
best = exp.best()
assert best is not None
model = best.train(task, epochs=40, batch_size=32, lr=0.01)
print(f"final test accuracy: {model.metrics['test_accuracy']:.4f}")
model.save_weights("minimal_nas.safetensors")
