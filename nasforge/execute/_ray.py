"""Trials on a Ray cluster (``pip install 'nasforge[ray]'``): the driver keeps ask, tell and storage."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError, TrialFailed
from nasforge.execute._base import Decide, Executor, Outcome, TrialJob, run_job

__all__ = ["RayExecutor"]

_POLL = 0.02  # seconds between a worker's looks for the driver's verdict on a report


@dataclass
class _Running:
    job: TrialJob
    ref: Any  # ray.ObjectRef of the Outcome
    decide: Decide
    started: float


class RayExecutor(Executor):
    """Runs trials as Ray tasks, ``concurrency`` at a time, on a new local cluster or an existing one.

    The estimator is put in Ray's object store once and shared by every trial. A worker's reports
    reach the driver through a small actor; the driver's scheduler decides and the worker goes on or
    stops. A task that raises, a worker that dies and a trial past ``time_limit`` (cancelled) fail
    only that trial.

    Args:
        address: ``None`` starts a local cluster (stopped at the end), ``"auto"`` joins the cluster
            this machine belongs to (``ray start --head``), or a ``ray://host:10001`` address.
        concurrency: trials running at once; default: the cluster's CPUs / ``cpus_per_trial``.
        cpus_per_trial: CPUs Ray reserves per trial (fractions allowed: 0.5 runs two per CPU).
        gpus_per_trial: GPUs Ray reserves per trial (fractions allowed: 0.5 runs two trials per
            GPU). With more than 0 every trial trains on the GPU Ray assigned it (``ray.get_gpu_ids()``;
            Ray narrows the task's ``CUDA_VISIBLE_DEVICES`` to it, so ``device: auto`` or ``cuda``
            means that GPU); a cluster without GPUs is an error before any trial. With 0 the trial
            sees no GPU (``CUDA_VISIBLE_DEVICES`` empty) and trains on the CPU.
        time_limit: seconds a trial may run before it is cancelled; None for no limit.
        init_options: more keyword arguments for ``ray.init`` (e.g. ``runtime_env``).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        concurrency: int | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        time_limit: float | None = None,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
        if not cpus_per_trial > 0 or gpus_per_trial < 0:
            raise ConfigError(
                f"cpus_per_trial must be > 0 and gpus_per_trial >= 0, got {cpus_per_trial}, {gpus_per_trial}"
            )
        if time_limit is not None and not time_limit > 0:
            raise ConfigError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        self.address = address
        self._requested = concurrency
        self.concurrency = concurrency or 1
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.time_limit = time_limit
        self.init_options = dict(init_options or {})
        self._owns_cluster = False
        self._broker: Any = None
        self._remote: Any = None
        self._estimators: dict[int, Any] = {}  # id(estimator) -> ObjectRef (and the estimator, kept alive)
        self._jobs: dict[int, _Running] = {}

    def describe(self) -> str:
        where = "a local cluster" if self.address is None else self.address
        return f"ray on {where} ({self.concurrency} at a time, {self.cpus_per_trial:g} CPU per trial)"

    def start(self) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "the ray executor needs Ray: pip install 'nasforge[ray]' (or choose --executor process)"
            ) from None
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                want = math.ceil((self._requested or 1) * self.cpus_per_trial)
                options["num_cpus"] = max(os.cpu_count() or 1, want)
            options.update(self.init_options)
            try:
                ray.init(address=self.address, **options)
            except Exception as exc:
                where = self.address or "a new local cluster"
                raise ConfigError(f"could not start or join Ray ({where}): {exc}") from None
            self._owns_cluster = True
        resources = ray.cluster_resources()
        try:
            check_cluster_gpus(resources, self.gpus_per_trial)
        except ConfigError:
            self.shutdown()
            raise
        if self._requested is None:
            cpus = float(resources.get("CPU", 1))
            self.concurrency = max(1, int(cpus // self.cpus_per_trial))
            if self.gpus_per_trial > 0:
                self.concurrency = min(self.concurrency, int(resources["GPU"] // self.gpus_per_trial) or 1)
        self._broker = ray.remote(num_cpus=0)(_Broker).remote()
        self._remote = ray.remote(_ray_trial).options(
            **trial_options(self.cpus_per_trial, self.gpus_per_trial)
        )

    def submit(self, job: TrialJob, decide: Decide) -> None:
        import ray

        if self._remote is None:
            raise ConfigError("RayExecutor.start() must be called before submit()")
        key = id(job.estimator)
        if key not in self._estimators:
            _send_own_code_by_value(job.estimator, job.arch.space)
            self._estimators[key] = (ray.put(job.estimator), job.estimator)
        light = dataclasses.replace(job, estimator=None)  # type: ignore[arg-type]
        threads = max(1, round(self.cpus_per_trial))
        ref = self._remote.remote(light, self._estimators[key][0], self._broker, threads, self.gpus_per_trial)
        self._jobs[job.number] = _Running(job, ref, decide, time.monotonic())

    @property
    def running(self) -> list[int]:
        return sorted(self._jobs)

    def wait(self, timeout: float) -> list[Outcome]:
        import ray

        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self._serve_reports()
            refs = [r.ref for r in self._jobs.values()]
            ready = ray.wait(refs, num_returns=len(refs), timeout=0.05)[0] if refs else []
            done = [self._collect(r) for r in list(self._jobs.values()) if r.ref in ready]
            done += self._enforce_limits()
            if done or not self._jobs or time.monotonic() >= deadline:
                return done

    def _serve_reports(self) -> None:
        import ray

        for number, step, value in ray.get(self._broker.take.remote()):
            r = self._jobs.get(number)
            reason = r.decide(number, step, value) if r is not None else "the trial was stopped"
            self._broker.decide.remote(number, step, reason)

    def _collect(self, r: _Running) -> Outcome:
        import ray

        self._jobs.pop(r.job.number, None)
        try:
            outcome: Outcome = ray.get(r.ref)
        except Exception as exc:  # the worker died, the task was cancelled
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            error = f"crashed: the Ray task failed: {type(exc).__name__}: {first}"
            return Outcome(r.job.number, {}, error=error)
        return outcome

    def _enforce_limits(self) -> list[Outcome]:
        import ray

        if self.time_limit is None:
            return []
        done = []
        now = time.monotonic()
        for r in list(self._jobs.values()):
            if now - r.started > self.time_limit:
                ray.cancel(r.ref, force=True)
                self._jobs.pop(r.job.number, None)
                done.append(
                    Outcome(
                        r.job.number,
                        {},
                        error=f"timed out: the trial ran longer than its limit of {self.time_limit:g} s "
                        "(executor time_limit) and was cancelled",
                    )
                )
        return done

    def stop_all(self) -> list[int]:
        import ray

        stopped = self.running
        for r in self._jobs.values():
            ray.cancel(r.ref, force=True)
        self._jobs.clear()
        return stopped

    def shutdown(self) -> None:
        import ray

        if ray.is_initialized():
            self.stop_all()
            self._estimators.clear()
            if self._owns_cluster:
                ray.shutdown()
                self._owns_cluster = False


def trial_options(cpus_per_trial: float, gpus_per_trial: float) -> dict[str, Any]:
    """The resource request of one trial's Ray task (``ray.remote(...).options(**this)``)."""
    return {"num_cpus": float(cpus_per_trial), "num_gpus": float(gpus_per_trial), "max_retries": 0}


def check_cluster_gpus(resources: dict[str, float], gpus_per_trial: float) -> None:
    """Raise a one-line ConfigError when trials need GPUs the cluster does not have."""
    have = float(resources.get("GPU", 0))
    if gpus_per_trial > 0 and have == 0:
        raise ConfigError(
            f"--gpus-per-trial {gpus_per_trial:g} but the Ray cluster has no GPU; start the Ray "
            "nodes on machines with GPUs (ray start --num-gpus N), or use --gpus-per-trial 0"
        )
    if gpus_per_trial > 1 and gpus_per_trial > have:
        raise ConfigError(
            f"--gpus-per-trial {gpus_per_trial:g} but the Ray cluster has {have:g} GPU(s) in all: "
            "no trial could ever start"
        )


def assigned_gpus(ids: list[Any], gpus_per_trial: float) -> str:
    """``CUDA_VISIBLE_DEVICES`` for a trial Ray gave the GPUs ``ids`` (``ray.get_gpu_ids()``);
    ``""`` (no GPU) when it reserved none: Ray leaves the variable alone for such tasks, and a
    trial with ``device: auto`` would otherwise train on a GPU nobody reserved for it.

    Raises:
        TrialFailed: GPUs were asked for but Ray assigned none.
    """
    if gpus_per_trial <= 0:
        return ""
    if not ids:
        raise TrialFailed(
            f"the trial asked Ray for {gpus_per_trial:g} GPU(s) but Ray assigned none to its worker"
        )
    return ",".join(str(i) for i in ids)


def _send_own_code_by_value(*objects: Any) -> None:
    """Let workers unpickle the user's own classes (an estimator or space defined in a script, a
    test or a notebook module that is not installed on the workers): their modules are pickled by
    value; installed packages (nasforge included) are imported on the workers as usual."""
    from ray import cloudpickle

    for obj in objects:
        module = sys.modules.get(type(obj).__module__)
        if module is None or module.__name__ == "__main__" or module.__name__.split(".")[0] == "nasforge":
            continue  # __main__ goes by value anyway; nasforge is installed wherever Ray runs it
        path = getattr(module, "__file__", None) or ""
        if "site-packages" in path or "dist-packages" in path:
            continue
        cloudpickle.register_pickle_by_value(module)


class _Broker:
    """A Ray actor between workers and the driver: reports go in, verdicts come out."""

    def __init__(self) -> None:
        self.inbox: list[tuple[int, int, float]] = []
        self.verdicts: dict[tuple[int, int], str | None] = {}

    def post(self, number: int, step: int, value: float) -> None:
        self.inbox.append((number, step, value))

    def take(self) -> list[tuple[int, int, float]]:
        out, self.inbox = self.inbox, []
        return out

    def decide(self, number: int, step: int, reason: str | None) -> None:
        self.verdicts[(number, step)] = reason

    def verdict(self, number: int, step: int) -> tuple[bool, str | None]:
        key = (number, step)
        if key in self.verdicts:
            return True, self.verdicts.pop(key)
        return False, None


def _ray_trial(job: TrialJob, estimator: Any, broker: Any, threads: int, gpus: float = 0.0) -> Outcome:
    """The Ray task: evaluate one trial on a worker, asking the driver after every report."""
    import ray

    os.environ["NASFORGE_THREADS"] = str(threads)  # the CPUs Ray reserved for this trial
    try:
        visible = assigned_gpus(list(ray.get_gpu_ids()), gpus)
    except TrialFailed as exc:
        return Outcome(job.number, {}, error=str(exc))
    # "cuda" / "auto" is then the GPU Ray reserved, or no GPU; restored for the worker's next task
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = visible

    def report(step: int, value: float) -> str | None:
        ray.get(broker.post.remote(job.number, step, value))
        while True:
            decided, reason = ray.get(broker.verdict.remote(job.number, step))
            if decided:
                return reason
            time.sleep(_POLL)

    try:
        return run_job(dataclasses.replace(job, estimator=estimator), report)
    finally:
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
