"""One operating-system process per trial: isolation, time and memory limits."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError
from nasforge.execute._base import Decide, Executor, Outcome, TrialJob, run_job

__all__ = ["ProcessExecutor"]


@dataclass
class _Running:
    job: TrialJob
    process: Any  # multiprocessing.Process (BaseProcess of the chosen context)
    conn: Connection
    decide: Decide
    started: float
    gpu: str | None = None


class ProcessExecutor(Executor):
    """Runs every trial in a new child process.

    The child inherits the estimator (``fork``, the default on Linux) or receives it pickled
    (``spawn``). Its memory is returned to the system when it exits, so the driver stays flat over
    any number of trials. A crash of the child (segfault, out-of-memory kill), a trial running past
    ``time_limit`` or growing past ``memory_limit_mb`` fails only that trial, with the reason.
    Children ignore Ctrl-C (the driver stops them) and die with the driver (Linux).

    On a machine with GPUs every trial process gets one of them: its ``CUDA_VISIBLE_DEVICES`` is
    set to the visible GPU with the fewest running trials (the lowest of equals), so ``device:
    auto`` or ``cuda`` in the trial means that GPU (``cuda:0`` inside the trial; ask for ``cuda``,
    not ``cuda:N``). ``trials_per_gpu`` trials share one GPU (small networks rarely fill one).

    Args:
        concurrency: trials running at once (each child uses the estimator's thread count);
            default: one per GPU slot (GPUs x ``trials_per_gpu``), or 1 without GPUs.
        time_limit: seconds a trial may run; None for no limit.
        memory_limit_mb: memory a trial's process may add: its private pages, not those it still
            shares with the driver after ``fork`` (checked every ``poll_interval`` seconds, Linux);
            None for no limit.
        start_method: ``fork`` (default where available) or ``spawn`` (needs a picklable
            estimator and space).
        threads: torch threads per trial (estimators without their own ``threads`` setting);
            default: 1 with ``fork`` (a forked child that starts a thread pool its parent already
            used can hang in GNU OpenMP: run ``concurrency`` = cores to use the machine, or pass
            ``threads`` only if this process has not run multi-threaded torch code), else this
            process's cores divided among the ``concurrency`` trials.
        poll_interval: seconds between checks of the limits.
        gpus: the GPUs to hand out, as ``CUDA_VISIBLE_DEVICES`` entries (``[0, 1]``); ``"auto"``
            (default): those visible to this process (:func:`nasforge._device.visible_gpus`);
            ``[]`` or None: none (trials inherit this process's environment, e.g. CPU trials).
        trials_per_gpu: trials that may share one GPU at a time, >= 1.

    Raises:
        ConfigError: a bad value, or a ``concurrency`` larger than the GPU slots.
    """

    name = "process"

    def __init__(
        self,
        concurrency: int | None = None,
        *,
        time_limit: float | None = None,
        memory_limit_mb: float | None = None,
        start_method: str | None = None,
        threads: int | None = None,
        poll_interval: float = 0.1,
        gpus: str | Sequence[int | str] | None = "auto",
        trials_per_gpu: int = 1,
    ) -> None:
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
        if isinstance(trials_per_gpu, bool) or not isinstance(trials_per_gpu, int) or trials_per_gpu < 1:
            raise ConfigError(f"trials_per_gpu must be a positive integer, got {trials_per_gpu!r}")
        self.gpus = _gpu_list(gpus)
        self.trials_per_gpu = trials_per_gpu
        slots = len(self.gpus) * trials_per_gpu
        if concurrency is None:
            concurrency = slots or 1
        elif self.gpus and concurrency > slots:
            raise ConfigError(
                f"concurrency {concurrency} is more than the GPU slots: {len(self.gpus)} GPU(s) x "
                f"{trials_per_gpu} trial(s) per GPU = {slots}; raise trials_per_gpu (--trials-per-gpu), "
                "lower the concurrency, or train on the CPU (device cpu)"
            )
        if time_limit is not None and not time_limit > 0:
            raise ConfigError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        if memory_limit_mb is not None and not memory_limit_mb > 0:
            raise ConfigError(f"memory_limit_mb must be a positive number, got {memory_limit_mb!r}")
        methods = mp.get_all_start_methods()
        if start_method is None:
            start_method = "fork" if "fork" in methods else "spawn"
        if start_method not in methods:
            raise ConfigError(f"start_method {start_method!r} is not available here; choose one of {methods}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer, got {threads!r}")
        self.concurrency = concurrency
        if threads is None:
            threads = 1 if start_method == "fork" else max(1, _cores() // concurrency)
        self.threads = threads
        self.time_limit = time_limit
        self.memory_limit_mb = memory_limit_mb
        self.start_method = start_method
        self.poll_interval = poll_interval
        self._ctx: Any = mp.get_context(start_method)
        self._jobs: dict[int, _Running] = {}

    def describe(self) -> str:
        limits = []
        if self.time_limit is not None:
            limits.append(f"{self.time_limit:g} s")
        if self.memory_limit_mb is not None:
            limits.append(f"{self.memory_limit_mb:g} MB")
        extra = f", limits {' and '.join(limits)} per trial" if limits else ""
        if self.gpus:
            extra += f", GPUs {','.join(self.gpus)} ({self.trials_per_gpu} trial(s) per GPU)"
        return f"process ({self.concurrency} at a time{extra})"

    def start(self) -> None:
        if self.gpus:
            # torch.cuda.is_available() in this process would otherwise initialise the CUDA driver,
            # after which forked children cannot use the GPU; with this it asks NVML instead
            os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
        if self.start_method == "fork":
            _warm_up_torch()

    def next_gpu(self) -> str | None:
        """The GPU the next trial gets: the one with the fewest running trials (the first of
        equals), like Syne Tune's ``rotate_gpus``; None without GPUs."""
        if not self.gpus:
            return None
        load = {g: 0 for g in self.gpus}
        for r in self._jobs.values():
            if r.gpu in load:
                load[r.gpu] += 1
        return min(self.gpus, key=lambda g: load[g])

    def submit(self, job: TrialJob, decide: Decide) -> None:
        gpu = self.next_gpu()
        if gpu is not None and self.start_method == "fork" and _cuda_initialized():
            raise ConfigError(
                "CUDA is already initialised in this process, so forked trial processes cannot use "
                "the GPU; use the process executor with start_method: spawn, or run nothing on the "
                "GPU in the driver"
            )
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_child_main,
            args=(job, child, self.threads, gpu),
            name=f"nasforge-trial-{job.number}",
            daemon=True,
        )
        try:
            process.start()
        except Exception as exc:  # spawn: the job does not pickle
            parent.close()
            child.close()
            raise ConfigError(
                f"cannot start a process for trial {job.number} ({self.start_method}): {exc}; "
                "use start_method='fork' or a picklable estimator and space"
            ) from None
        child.close()  # the child holds its end; EOF here then means the child is gone
        self._jobs[job.number] = _Running(job, process, parent, decide, time.monotonic(), gpu)

    @property
    def running(self) -> list[int]:
        return sorted(self._jobs)

    def wait(self, timeout: float) -> list[Outcome]:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            done = self._serve(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            done += self._enforce_limits()
            if done or not self._jobs or time.monotonic() >= deadline:
                return done

    def _serve(self, timeout: float) -> list[Outcome]:
        ready = wait_connections([r.conn for r in self._jobs.values()], timeout) if self._jobs else []
        done: list[Outcome] = []
        for r in [r for r in list(self._jobs.values()) if r.conn in ready]:
            conn = r.conn
            try:
                message = conn.recv()
            except (EOFError, OSError):
                done.append(self._finish(r, self._death_reason(r)))
                continue
            kind = message[0]
            if kind == "report":
                _, step, value = message
                reason = r.decide(r.job.number, step, value)
                with contextlib.suppress(OSError):  # the child died meanwhile: EOF comes next
                    conn.send(reason)
            elif kind == "done":
                outcome: Outcome = message[1]
                self._close(r)
                done.append(outcome)
        return done

    def _enforce_limits(self) -> list[Outcome]:
        done: list[Outcome] = []
        now = time.monotonic()
        for r in list(self._jobs.values()):
            if self.time_limit is not None and now - r.started > self.time_limit:
                done.append(
                    self._finish(
                        r,
                        f"timed out: the trial ran longer than its limit of {self.time_limit:g} s "
                        "(executor time_limit) and was killed",
                    )
                )
            elif self.memory_limit_mb is not None:
                rss = _rss_mb(r.process.pid)
                if rss > self.memory_limit_mb:
                    done.append(
                        self._finish(
                            r,
                            f"out of memory: the trial's process used {rss:,.0f} MB, more than its limit "
                            f"of {self.memory_limit_mb:g} MB (executor memory_limit_mb), and was killed",
                        )
                    )
        return done

    def _death_reason(self, r: _Running) -> str:
        r.process.join(timeout=5)
        code = r.process.exitcode
        if code is not None and code < 0:
            try:
                sig = signal.Signals(-code).name
            except ValueError:
                sig = f"signal {-code}"
            hint = " (the system may have run out of memory)" if -code == signal.SIGKILL else ""
            return f"crashed: the trial's process was killed by {sig}{hint}"
        return f"crashed: the trial's process exited with code {code} before returning a result"

    def _finish(self, r: _Running, error: str) -> Outcome:
        self._kill(r)
        metrics: dict[str, Any] = {}
        return Outcome(r.job.number, metrics, error=error)

    def _kill(self, r: _Running) -> None:
        if r.process.is_alive():
            r.process.kill()
        self._close(r)

    def _close(self, r: _Running) -> None:
        r.process.join(timeout=10)
        r.conn.close()
        self._jobs.pop(r.job.number, None)

    def stop_all(self) -> list[int]:
        stopped = self.running
        running = list(self._jobs.values())
        for r in running:  # every kill first, then the waits: stopping takes one wait, not one each
            if r.process.is_alive():
                r.process.kill()
        for r in running:
            self._close(r)
        return stopped

    def shutdown(self) -> None:
        self.stop_all()


def _warm_up_torch() -> None:
    """Import torch and run one tiny training step here, once: every forked child inherits the
    loaded modules and initialised kernels instead of paying for them again (measured: about
    2.5 s per trial on digits, more than the training itself). The driver's RNG is left as it was."""
    try:
        import torch
    except ImportError:
        return
    from nasforge._threads import torch_threads

    # one thread: a thread pool started here would be inherited half-alive by every child
    with contextlib.suppress(Exception), torch.random.fork_rng(devices=[]), torch_threads(1):
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(144, 2),
        )
        opt = torch.optim.Adam(net.parameters())
        torch.nn.functional.cross_entropy(net(torch.randn(2, 1, 8, 8)), torch.tensor([0, 1])).backward()
        opt.step()


def _gpu_list(gpus: str | Sequence[int | str] | None) -> list[str]:
    if gpus is None:
        return []
    if isinstance(gpus, str):
        if gpus == "auto":
            from nasforge._device import visible_gpus

            return visible_gpus()
        gpus = [g for g in gpus.split(",") if g.strip()]
    out = [str(g).strip() for g in gpus]
    if any(not g for g in out) or len(set(out)) != len(out):
        raise ConfigError(f"gpus must be 'auto' or a list of distinct GPU ids such as [0, 1], got {gpus!r}")
    return out


def _cuda_initialized() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def _cores() -> int:
    from nasforge._threads import available_cpus

    return available_cpus()


def _rss_mb(pid: int | None) -> float:
    """Memory that is the trial process's own, in MB: its private pages (USS), which a forked child
    gets as it writes; the driver's pages it still shares are not counted. Falls back on the
    resident size where smaps_rollup is missing, and 0 where /proc is."""
    try:
        private = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
        return private / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the driver dies (SIGKILL of the driver leaves no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        parent = mp.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # the driver died before prctl took effect
            os._exit(1)


def _child_main(job: TrialJob, conn: Connection, threads: int, gpu: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the driver, which stops us
    _die_with_parent()
    os.environ["NASFORGE_THREADS"] = str(threads)
    if gpu is not None:  # before anything in this process initialises CUDA: "cuda" is this GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu

    def report(step: int, value: float) -> str | None:
        conn.send(("report", step, value))
        reason: str | None = conn.recv()
        return reason

    try:
        outcome = run_job(job, report)
    except BaseException as exc:  # the driver must hear why, whatever it was
        outcome = Outcome(job.number, {}, error=f"crashed: {type(exc).__name__}: {exc}")
    try:
        conn.send(("done", outcome))
    except Exception as exc:  # metrics that do not pickle
        error = f"the trial's result could not be sent back: {exc}"
        conn.send(("done", Outcome(job.number, {}, error=error)))
    conn.close()
