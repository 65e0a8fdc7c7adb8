"""Search configuration: YAML in, validated before any trial runs.

A config file looks like this (every key optional; these are the defaults on digits; on MNIST and
Fashion-MNIST the per-trial and final budgets default to :data:`LARGE_BUDGET`). A ``space``,
``strategy`` or ``estimator`` section without a ``name`` is the default component with those
options overriding its defaults (``estimator: {epochs: 5}``), and ``final`` likewise::

    name: null                 # run name; default "<dataset>-<strategy>"
    space: {name: chain_cnn, depth: [2, 5], max_params: 150000}
    data: {name: digits, root: null, fraction: 1.0, seed: 0, download: false, options: {},
           class_names: null}  # class_names: [cat, dog] names classes the data leaves unnamed
    strategy: {name: evolution, population: 10, tournament: 3}
    scheduler: null            # early stopping: median, successive_halving, hyperband or learning_curve,
                               # e.g. {name: successive_halving, eta: 3}; the successive_halving,
                               # hyperband and bohb strategies bring their own
    estimator: {name: train, epochs: 10, batch_size: 32, lr: 0.01}
                               # + the data's recipe: augment: auto (the table of recipes per dataset,
                               # nasforge._defaults.RECIPES; or none, shift, shift+flip); label_smoothing
                               # and warmup (epochs of lr warm-up) left out: the table's too
    objectives: [val_accuracy]
    constraints: []            # e.g. ["params <= 100000"]
    trials: 30                 # with time: and no trials:, unbounded (the time stops the search)
    time: null                 # the whole budget, search and final training: 90s, 15m, 1h30m, 2h or
                               # seconds; written out as seconds (nasforge._budget has the split rule)
    timeout: null              # seconds; stops starting trials (the final training is not covered)
    max_screened: 200          # give up after this many proposals in a row broke a constraint
    executor: null             # where trials run: inprocess (default), process or ray, e.g.
                               # {name: process, concurrency: 2, time_limit: 900, memory_limit_mb: 4000}
                               # or {name: ray, address: auto, concurrency: 4, cpus_per_trial: 1}
    seed: 0
    device: auto               # where trials, one-shot supernets and the final training run: auto
                               # (CUDA if available, then MPS, then CPU), cpu, cuda, cuda:N, mps; an
                               # estimator's own device: option wins for the trials
    amp: auto                  # mixed precision: auto (bf16 on a CUDA GPU that supports it, else
                               # off), off, bf16, fp16 (GPU only, with loss scaling)
    final: {epochs: 60, lr: 0.01, batch_size: 32,  # training of the best; epochs 0 skips it
            augment: null, label_smoothing: null, warmup: null,  # null: the estimator's recipe
                               # (auto there: the table's final-training values)
            race: 1, race_epochs: null, race_folds: 3,  # race: K > 1 trains the top K for
                               # race_epochs (null: a quarter of epochs) and sends the best on;
                               # race_folds: its cross-validation on a small validation split
            time_share: null, max_epochs: null}  # under time: this share of the budget for
                               # the final training (race included), as many epochs as fit up to
                               # max_epochs (MNIST-sized data: 0.5 and 60); null: what epochs need
    run_dir: null              # default runs/<name>
    storage: null              # a database URL shared by several workers (postgresql://user@host/db,
                               # sqlite:///shared.db); default: nasforge.db in the run directory
    track: []                  # follow the search in TensorBoard / MLflow, e.g.
                               # [tensorboard, {name: mlflow, tracking_uri: http://host:5000}]
"""

from nasforge.config._model import (
    LARGE_BUDGET,
    LARGE_DATASETS,
    SECTION_DEFAULTS,
    SMALL_BUDGET,
    DataConfig,
    FinalConfig,
    SearchConfig,
    fill_defaults,
    load_config,
    load_raw,
    parse_config,
)
from nasforge.config._overrides import (
    apply_overrides,
    check_recipe_options,
    merge_executor_options,
    merge_knobs,
    merge_track_options,
    parse_class_names,
    search_config,
    with_metric,
)

__all__ = [
    "LARGE_BUDGET",
    "LARGE_DATASETS",
    "SECTION_DEFAULTS",
    "SMALL_BUDGET",
    "DataConfig",
    "FinalConfig",
    "SearchConfig",
    "apply_overrides",
    "check_recipe_options",
    "fill_defaults",
    "load_config",
    "load_raw",
    "merge_executor_options",
    "merge_knobs",
    "merge_track_options",
    "parse_class_names",
    "parse_config",
    "search_config",
    "with_metric",
]
