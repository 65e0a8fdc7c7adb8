"""Where training runs: one resolver for device names, mixed precision, and what a run records.

Every place that trains or runs a network (:class:`~nasforge.TrainEstimator`, the supernet
estimator, the one-shot strategies, :func:`~nasforge.train_final`, the zero-cost proxies,
:func:`~nasforge.load`, the CLI) takes a ``device`` name and resolves it here:

- ``"auto"`` (the default): the first CUDA GPU this process sees, else Apple's MPS, else the CPU;
- ``"cpu"``, ``"cuda"`` (the first visible GPU), ``"cuda:N"``, ``"mps"``.

A name that cannot be used here is a :class:`~nasforge.errors.ConfigError` whose message says what
this machine has. Executors that hand each trial its own GPU (``process``, ``ray``) narrow
``CUDA_VISIBLE_DEVICES`` per trial, so inside a trial ``"auto"`` and ``"cuda"`` mean *its* GPU.

Nothing here initialises CUDA while checking a name: GPUs are counted with
``torch.cuda.device_count()`` (NVML where it can), so a driver that validates ``device: cuda``
can still fork trial processes that use the GPU. Mixed-precision defaults (``amp: auto``) are
resolved where training runs, since asking a GPU whether it supports bfloat16 initialises CUDA.

Example:
    >>> from nasforge._device import resolve_amp, resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_amp("auto", resolve_device("cpu"))
    'off'
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from typing import TYPE_CHECKING, Any

from nasforge.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "AMP_MODES",
    "DEVICE_NAMES",
    "autocast",
    "check_amp",
    "check_device_name",
    "device_info",
    "grad_scaler",
    "resolve_amp",
    "resolve_device",
    "synchronize",
    "visible_gpus",
]

DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")
AMP_MODES = ("auto", "off", "bf16", "fp16")
_NAME = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def check_device_name(name: Any) -> str:
    """``name`` as a canonical string if it is a device name at all (nothing is probed).

    Raises:
        ConfigError: on anything but ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` (or a
            ``torch.device`` of those types).
    """
    text = str(name).strip().lower() if name is not None else "auto"
    match = _NAME.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ConfigError(f"unknown device {name!r}; valid: {', '.join(DEVICE_NAMES)} (e.g. cuda:1)")
    return text


def _cuda_count() -> int:
    import torch

    # device_count() asks NVML first and does not initialise CUDA, unlike is_available(): a driver
    # that checks the name can still fork trial processes that use the GPU.
    return int(torch.cuda.device_count()) if torch.backends.cuda.is_built() else 0


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _no_cuda_reason() -> str:
    import torch

    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return f"torch sees no CUDA GPU (CUDA_VISIBLE_DEVICES={visible!r})"
    return "torch sees no CUDA GPU (no NVIDIA driver or GPU on this machine?)"


def resolve_device(name: Any = "auto") -> torch.device:
    """The ``torch.device`` that ``name`` means on this machine.

    Args:
        name: ``"auto"`` (CUDA if available, then MPS, then CPU), ``"cpu"``, ``"cuda"``
            (``cuda:0``), ``"cuda:N"``, ``"mps"``, a ``torch.device``, or None (``"auto"``).

    Raises:
        ConfigError: unknown name; CUDA asked for without a CUDA GPU; ``cuda:N`` with N not below
            the number of visible GPUs; MPS asked for where it is not available.
    """
    import torch

    text = check_device_name(name)
    kind, _, index = text.partition(":")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "auto":
        if _cuda_count() > 0:
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' asked for, but MPS is not available here; use auto or cpu")
        return torch.device("mps")
    count = _cuda_count()
    if count == 0:
        raise ConfigError(f"device {text!r} asked for, but {_no_cuda_reason()}; use --device cpu or auto")
    n = int(index or 0)
    if n >= count:
        raise ConfigError(
            f"device {text!r} asked for, but this process sees {count} CUDA GPU{'s' if count > 1 else ''} "
            f"(cuda:0{f'..cuda:{count - 1}' if count > 1 else ''}); pick one of those, or set "
            "CUDA_VISIBLE_DEVICES"
        )
    return torch.device("cuda", n)


def check_amp(amp: Any) -> str:
    """``amp`` as one of :data:`AMP_MODES` (None means ``"auto"``).

    Raises:
        ConfigError: on any other value.
    """
    if amp is None:
        return "auto"
    if amp is False:  # YAML reads a bare `off` as False
        return "off"
    if not isinstance(amp, str) or amp.lower() not in AMP_MODES:
        raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    return amp.lower()


def resolve_amp(amp: Any, device: torch.device) -> str:
    """The mixed-precision mode training on ``device`` uses: ``"off"``, ``"bf16"`` or ``"fp16"``.

    ``"auto"`` is ``"bf16"`` on a CUDA GPU that supports bfloat16 (Ampere and later), else
    ``"off"``: off on CPU and MPS (float32 there is exactly what nasforge did before it had a
    device option), and off on older GPUs, where fp16 would need loss scaling and can change a
    search's results; ask for ``"fp16"`` explicitly there. Call it where training runs: on CUDA
    it initialises CUDA.

    Raises:
        ConfigError: ``fp16`` on the CPU (no fast fp16 kernels there; use ``bf16`` or ``off``).
    """
    mode = check_amp(amp)
    if mode == "auto":
        if device.type != "cuda":
            return "off"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "off"
    if mode == "fp16" and device.type == "cpu":
        raise ConfigError("amp fp16 needs a GPU; on the CPU use amp bf16 or off")
    return mode


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for a resolved ``amp`` mode; a no-op context for ``"off"``."""
    if amp == "off":
        return contextlib.nullcontext()
    import torch

    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, amp: str) -> Any:
    """A ``torch.amp.GradScaler`` for ``fp16`` (its small range needs loss scaling), else None."""
    if amp != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(device.type)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (GPU timings are meaningless without it); no-op on CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_info(device: torch.device, amp: str | None = None) -> dict[str, Any]:
    """What a trial or a saved model records about where it ran.

    Returns:
        ``device`` (``"cuda:0"``, ``"cpu"``), ``device_name`` (the GPU's or the CPU's model name),
        ``torch_version``, ``cuda_version`` (None on a CPU-only build), on a GPU
        ``cuda_visible_devices`` when that is set (the process and ray executors set it per
        trial), and, with ``amp``, ``amp``.
    """
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        label = f"cuda:{index}"
    else:
        name = _cpu_name() if device.type == "cpu" else "Apple MPS"
        label = device.type
    info: dict[str, Any] = {
        "device": label,
        "device_name": name,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
    }
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device.type == "cuda" and visible is not None:  # which physical GPU "cuda:0" was
        info["cuda_visible_devices"] = visible
    if amp is not None:
        info["amp"] = amp
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def visible_gpus() -> list[str]:
    """The GPUs this process may hand to trial processes, as ``CUDA_VISIBLE_DEVICES`` entries.

    ``CUDA_VISIBLE_DEVICES`` when it is set (its entries, in order, UUIDs included), else
    ``0 .. torch.cuda.device_count() - 1``; empty without a GPU. CUDA is not initialised.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        entries = [e.strip() for e in env.split(",") if e.strip()]
        # CUDA stops at the first invalid entry ("-1" hides every GPU)
        out = []
        for e in entries:
            if e.startswith("-"):
                break
            out.append(e)
        return out
    try:
        return [str(i) for i in range(_cuda_count())]
    except ImportError:
        return []


def check_device_and_amp(device: Any, amp: Any) -> tuple[str, str]:
    """Validate a ``device`` and ``amp`` setting where it is given (a constructor, a config), without
    initialising CUDA; returns the canonical names, which are resolved again where training runs.

    Raises:
        ConfigError: see :func:`resolve_device` and :func:`resolve_amp`.
    """
    name = check_device_name(device)
    resolved = resolve_device(name)
    mode = check_amp(amp)
    if resolved.type != "cuda":  # on CUDA the bf16 check would initialise CUDA: done in the trial
        resolve_amp(mode, resolved)
    return name, mode
