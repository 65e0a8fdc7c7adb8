"""MLflow: one parent run per experiment, one nested child run per finished trial.

Written through ``mlflow.tracking.MlflowClient`` (no fluent ``mlflow.start_run``: no global active
run, nothing resolved from the working directory or git). ``mlflow-skinny`` is enough
(``pip install 'nasforge[mlflow]'``): the default store is SQLite, whose SQLAlchemy and Alembic
already come with Optuna.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError
from nasforge.track._base import Tracker, describe, error_line, finite_metrics

if TYPE_CHECKING:
    from nasforge.experiment import Experiment, Trial

__all__ = ["MLflowCallback"]

DB_FILE = "mlflow.db"  # the default store, in the run directory
ARTIFACTS = "mlartifacts"  # the default experiment's artifact root, in the run directory
ROLE_TAG = "nasforge.role"
RUN_DIR_TAG = "nasforge.run_dir"
STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
MAX_PARAM_VALUE = 500  # MLflow's limit before 2.x was 500 characters; newer stores take more
MAX_TAG_VALUE = 5000
BATCH = 100  # log_batch takes at most 100 params (and 1000 metrics) per call


class MLflowCallback(Tracker):
    """Log the search to MLflow: a parent run for the experiment, a nested run per trial.

    - parent run (named after the experiment; tags ``nasforge.role=experiment`` and the run
      directory): params ``objectives``, ``space``, ``seed``; metric ``best_<objective>``, the best
      primary value so far, with the trial number as step. A resumed search (same run directory and
      store) continues the same parent run. Closed as FINISHED, or KILLED if the search stopped with
      an error or Ctrl-C.
    - child run per trial (``trial 7``, tag ``mlflow.parentRunId``): params = the architecture's
      parameters; metrics = the trial's finite metrics, plus ``learning_curve`` with one value per
      reported step (``ctx.report``, e.g. per epoch); tags ``state`` (COMPLETE, PRUNED, FAIL),
      ``architecture`` (the short text), ``architecture_key`` and, for a failed trial, ``error``
      (the exception's message line); status FINISHED, or FAILED for a failed trial.

    Args:
        tracking_uri: an MLflow tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``,
            ``databricks``, ...); default: ``sqlite:///<run_dir>/mlflow.db``, a local store that
            needs no server (``mlflow ui --backend-store-uri sqlite:///runs/NAME/mlflow.db``).
        experiment_name: the MLflow experiment; default: the nasforge experiment's name.

    Example:
        >>> from nasforge.track import MLflowCallback
        >>> with MLflowCallback() as ml:  # doctest: +SKIP
        ...     exp.run(strategy="random", estimator=est, n_trials=20, callbacks=[ml])
    """

    name = "mlflow"
    extra = "mlflow"
    module = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None) -> None:
        super().__init__()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self._client: Any = None
        self._experiment_id: str | None = None
        self.parent_run_id: str | None = None

    def resolved_tracking_uri(self, exp: Experiment) -> str:
        """The tracking URI used for ``exp``."""
        if self.tracking_uri is not None:
            return str(self.tracking_uri)
        if exp.run_dir is None:
            raise ConfigError("the mlflow tracker needs tracking_uri= for an experiment without a run_dir")
        return f"sqlite:///{(exp.run_dir / DB_FILE).resolve()}"

    def log(self, exp: Experiment, trial: Trial) -> None:
        if self._client is None:
            self._open(exp)
        from mlflow.entities import Metric, Param

        client, parent = self._client, self.parent_run_id
        tags = {
            "mlflow.parentRunId": parent,
            "nasforge.trial": str(trial.number),
            "state": trial.state.value,
            "architecture": describe(exp, trial)[:MAX_TAG_VALUE],
            "architecture_key": trial.architecture.key,
        }
        error = error_line(trial)
        if error:
            tags["error"] = error[:MAX_TAG_VALUE]
        child = client.create_run(
            self._experiment_id,
            start_time=None if trial.started is None else _ms(trial.started),
            tags=tags,
            run_name=f"trial {trial.number}",
        )
        run_id = child.info.run_id
        stamp = _ms(trial.finished if trial.finished is not None else time.time())
        metrics = [Metric(_key(k), v, stamp, 0) for k, v in finite_metrics(trial.metrics).items()]
        metrics += [
            Metric("learning_curve", v, stamp, int(step))
            for step, v in sorted(finite_metrics(trial.intermediate).items())
        ]
        params = [Param(_key(k), str(v)[:MAX_PARAM_VALUE]) for k, v in trial.architecture.params.items()]
        for i in range(0, max(len(params), len(metrics), 1), BATCH):
            client.log_batch(run_id, metrics=metrics[i : i + BATCH], params=params[i : i + BATCH])
        client.set_terminated(run_id, status=STATUS.get(trial.state.value, "FAILED"), end_time=stamp)
        best = exp.best()
        if best is not None and best.value is not None:
            client.log_metric(
                parent,
                f"best_{_key(exp.objective.names[0])}",
                float(best.value),
                timestamp=stamp,
                step=trial.number,
            )

    def finish(self, failed: bool) -> None:
        if self._client is not None and self.parent_run_id is not None:
            self._client.set_terminated(self.parent_run_id, status="KILLED" if failed else "FINISHED")

    def _open(self, exp: Experiment) -> None:
        uri = self.resolved_tracking_uri(exp)
        _check_reachable(uri)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise ConfigError(
                f"the mlflow tracker needs the 'mlflow' package ({exc}): pip install 'nasforge[mlflow]'"
            ) from None
        with _quiet():  # "Creating initial MLflow database tables ..." on a new SQLite store
            client = MlflowClient(tracking_uri=uri)
            name = self.experiment_name or exp.name
            artifacts = None
            if self.tracking_uri is None and exp.run_dir is not None:
                artifacts = (exp.run_dir / ARTIFACTS).resolve().as_uri()
            experiment_id = _experiment_id(client, name, artifacts)
        run_dir = str(exp.run_dir.resolve()) if exp.run_dir is not None else None
        parent = _find_parent(client, experiment_id, run_dir)
        if parent is not None:
            client.update_run(parent, status="RUNNING")  # a resumed search goes on in the same run
        else:
            tags = {ROLE_TAG: "experiment"}
            if run_dir is not None:
                tags[RUN_DIR_TAG] = run_dir
            parent = client.create_run(experiment_id, tags=tags, run_name=exp.name).info.run_id
            from mlflow.entities import Param

            params = {"objectives": ", ".join(exp.objective.specs), "space": exp.space.name}
            if exp.seed is not None:
                params["seed"] = str(exp.seed)
            client.log_batch(parent, params=[Param(k, v[:MAX_PARAM_VALUE]) for k, v in params.items()])
        self._client, self._experiment_id, self.parent_run_id = client, experiment_id, parent


def _experiment_id(client: Any, name: str, artifacts: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location=artifacts))
        except Exception:  # another worker created it in between
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return str(found.experiment_id)


def _find_parent(client: Any, experiment_id: str, run_dir: str | None) -> str | None:
    """The parent run an earlier search of the same run directory started, if any."""
    if run_dir is None or "'" in run_dir:  # MLflow's filter syntax has no escape for quotes
        return None
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{ROLE_TAG}` = 'experiment' and tags.`{RUN_DIR_TAG}` = '{run_dir}'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return str(runs[0].info.run_id) if runs else None


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds when an http(s) tracking server cannot be reached.

    MLflow retries a refused request with exponential backoff for minutes (to ride out rate
    limits), which would stall the search at its first trial; a server that answers once gets
    MLflow's retries from then on.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"cannot reach the MLflow server at {parts.hostname}:{port} ({exc})") from None


def _key(name: str) -> str:
    """A metric or param name MLflow accepts (letters, digits, ``_ - . / :`` and spaces)."""
    return re.sub(r"[^\w\-./: ]", "_", name)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
