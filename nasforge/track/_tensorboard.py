"""TensorBoard: each finished trial as scalars, a learning curve and a text card.

Written with PyTorch's own ``torch.utils.tensorboard.SummaryWriter``, which needs the
``tensorboard`` package (``pip install 'nasforge[tensorboard]'``): the same package then shows the
logs (``tensorboard --logdir runs/NAME/tensorboard``), and no third writer has to keep up with
torch and protobuf.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError
from nasforge.track._base import Tracker, describe, error_line, finite_metrics

if TYPE_CHECKING:
    from nasforge.experiment import Experiment, Trial

__all__ = ["TensorBoardCallback"]

LOG_DIR = "tensorboard"  # under the run directory, when no log_dir is given


class TensorBoardCallback(Tracker):
    """Write every finished trial to TensorBoard event files.

    What is written, with the trial number as the global step (trials that finish out of order
    still land at their own step):

    - ``trial/<metric>``: each of the trial's finite metrics (``trial/val_accuracy``, ``trial/params``, ...);
    - ``best/<objective>``: the best value of the primary objective so far (feasible complete trials);
    - ``learning_curve/trial_0007``: the values the estimator reported during trial 7
      (``ctx.report``; the ``TrainEstimator`` reports validation accuracy per epoch), step = epoch;
    - ``architecture`` (Text tab): the trial's state, its architecture in short and its parameters
      as a table, and the error of a failed trial.

    Args:
        log_dir: directory for the event files; default ``<run_dir>/tensorboard`` of the experiment.

    Example:
        >>> import nasforge as nf
        >>> from nasforge.track import TensorBoardCallback
        >>> with TensorBoardCallback() as tb:  # doctest: +SKIP
        ...     exp.run(strategy="random", estimator=est, n_trials=20, callbacks=[tb])
        >>> # then: tensorboard --logdir runs/NAME/tensorboard
    """

    name = "tensorboard"
    extra = "tensorboard"
    module = "tensorboard"

    def __init__(self, log_dir: str | Path | None = None) -> None:
        super().__init__()
        self.log_dir = log_dir
        self._writer: Any = None

    def resolved_log_dir(self, exp: Experiment) -> Path:
        """Where the event files go for ``exp``."""
        if self.log_dir is not None:
            return Path(self.log_dir)
        if exp.run_dir is None:
            raise ConfigError("the tensorboard tracker needs log_dir= for an experiment without a run_dir")
        return exp.run_dir / LOG_DIR

    def log(self, exp: Experiment, trial: Trial) -> None:
        if self._writer is None:
            self._writer = _summary_writer(self.resolved_log_dir(exp))
        w = self._writer
        step = trial.number
        for key, value in finite_metrics(trial.metrics).items():
            w.add_scalar(f"trial/{key}", value, step)
        best = exp.best()
        if best is not None and best.value is not None:
            w.add_scalar(f"best/{exp.objective.names[0]}", float(best.value), step)
        for epoch, value in sorted(finite_metrics(trial.intermediate).items()):
            w.add_scalar(f"learning_curve/trial_{trial.number:04d}", value, int(epoch))
        w.add_text("architecture", _card(exp, trial), step)
        w.flush()  # a search is slow: show each trial at once, and lose nothing if killed

    def finish(self, failed: bool) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()


def _summary_writer(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(
            f"the tensorboard tracker needs the 'tensorboard' package ({exc}): "
            "pip install 'nasforge[tensorboard]'"
        ) from None
    log_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(log_dir))


def _card(exp: Experiment, trial: Trial) -> str:
    """The trial as Markdown (TensorBoard's Text tab renders it)."""
    arch = trial.architecture
    lines = [f"**trial {trial.number}**: {trial.state.value}, `{describe(exp, trial)}` (key `{arch.key}`)"]
    error = error_line(trial)
    if error:
        lines.append(f"\nerror: {error}")
    lines += ["", "| parameter | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in arch.params.items()]
    return "\n".join(lines)
