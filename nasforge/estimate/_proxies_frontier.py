"""Recent zero-cost proxies: AZ-NAS's three scores, MeCo, MeCo-opt, ZiCo and SWAP.

They are registered in :data:`nasforge.estimate.PROXIES` beside the classic ones and share their
contract (see :mod:`nasforge.estimate._proxies`): larger means "predicted better", the scored
model is never touched (each pass works on a ``copy.deepcopy`` in train mode, as the reference
code scores freshly built networks), torch's global generator is forked and seeded, and the same
seed gives the same score. Our own implementations of the definitions in the papers and the
authors' code (cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy``, HamsterMimi/MeCo
``correlation/NAS_Bench_201.py``, SLDGroup/ZiCo, pym1024/SWAP ``src/metrics/swap.py``):

================ ================================================================ ===============
name             score                                                            data
================ ================================================================ ===============
az_expressivity  AZ-NAS (Lee & Ham, CVPR 2024): sum over block outputs of the      inputs
                 entropy of the normalised eigenvalues of the channel covariance
                 (a feature map ``(B, C, H, W)`` is ``B*H*W`` samples of ``C``)
az_progressivity AZ-NAS: min over consecutive blocks of the entropy's increase     inputs
az_trainability  AZ-NAS: mean over consecutive blocks of ``2 - s - 1/s``, ``s``    inputs
                 the top singular value of ``E[g_in g_out']``, ``g_out`` a
                 Rademacher vector back-propagated through the block to ``g_in``
meco             MeCo (Jiang et al., NeurIPS 2023): sum over every module's        inputs
                 output of the minimum eigenvalue of the channel correlation        (one sample)
                 matrix of the first sample's feature map
meco_opt         MeCo-opt: the same on 8 random channels, times ``C / 8``          inputs
zico             ZiCo (Li et al., ICLR 2023): sum over conv/linear layers of       inputs +
                 ``log sum_w mean|g_w| / std(g_w)`` over two batches (the batch    targets
                 split in halves)
swap             SWAP (Peng et al., ICLR 2024): number of distinct sample-wise     inputs
                 activation patterns (one per activation unit: its on/off code     (16 samples)
                 over the first 16 samples)
swap_reg         SWAP times the size regulariser ``exp(-(P - mu)^2 / sigma)``,     inputs
                 ``P`` the parameters in thousands (:data:`SWAP_MU`,
                 :data:`SWAP_SIGMA`)
================ ================================================================ ===============

AZ-NAS's fourth score, complexity, is FLOPs: the registered ``flops`` proxy. Its non-linear
aggregation of the four (sum over proxies of ``log(rank / N)``) is
:func:`nasforge.estimate.log_rank_vote`, and ``az_nas`` names that ensemble
(:data:`nasforge.estimate.ENSEMBLES`).

Choices where the reference leaves room (documented because they change the numbers):

- **Blocks** (AZ-NAS): the outputs of the model's ``stem`` (if it has one) and of each member of
  its longest top-level ``nn.Sequential`` / ``nn.ModuleList`` (NB201: the 17 cells and reduction
  blocks, as ``extract_cell_features`` does; chain CNN: its layers; MBConv: its blocks); for a
  bare ``nn.Sequential`` its members. A block pair whose spatial sizes are not an integer stride
  apart, or whose output does not depend on its input, is left out of trainability. The reference
  re-initialises every network (Kaiming normal, fan-in) before scoring; here the network is scored
  with the weights it was built with, like every other proxy.
- **Degenerate cases** follow the reference: a block output without variance (an NB201 cell of
  ``none`` edges) has no eigenvalue spectrum, so expressivity and progressivity are ``-inf``; a block
  that passes the gradient through unchanged (a cell of skip connections) makes trainability
  ``-inf``.
- **MeCo** hooks every module, containers included (a ``Sequential``'s output is counted again
  for the container, as the reference does); outputs without a channel and spatial axis (logits)
  add 0 there and are skipped here. MeCo-opt draws its 8 channels from a generator seeded with
  ``seed``. If a BatchNorm cannot normalise the single sample in train mode (a 1x1 feature map),
  the pass is repeated with BatchNorm layers in eval mode.
- **ZiCo** uses two batches; the reference reads two batches of a data loader, here the given
  batch is split into two halves (at least 2 samples are needed).
- **SWAP** uses the first 16 samples (the authors' batch) and one network, where the authors
  average 32 re-initialisations; activations are the units of :data:`_ACTIVATIONS` layers (the
  reference hooks ``nn.ReLU`` on 4-d inputs, which is all NB201 has), a unit is "on" when its
  output is positive.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasforge.estimate._proxy_passes import (
    _ACTIVATIONS,
    _BATCH_NORMS,
    _device,
    _first_tensor,
    _float_dtype,
    _scored_weights,
    _working_copy,
)
from nasforge.hardware import count_params

__all__ = [
    "FRONTIER_PROXIES",
    "SWAP_MU",
    "SWAP_SAMPLES",
    "SWAP_SIGMA",
    "frontier_pass",
    "swap_regulariser",
    "swap_size_factor",
]

FRONTIER_PROXIES = frozenset(
    {"az_expressivity", "az_progressivity", "az_trainability", "meco", "meco_opt", "zico", "swap", "swap_reg"}
)
_AZ = frozenset({"az_expressivity", "az_progressivity", "az_trainability"})
#: samples of the batch SWAP reads (the batch size of the authors' code)
SWAP_SAMPLES = 16
#: centre of SWAP's size regulariser, in thousands of parameters: the best of a 5 x 4 grid of
#: (mu, sigma) on 300 NB201 tuning cells (docs/benchmarks.md); the paper leaves both to the space
SWAP_MU = 1200.0
#: width of SWAP's size regulariser, in (thousands of parameters) squared
SWAP_SIGMA = 1.0e6
#: MeCo-opt's channel sample
_MECO_OPT_CHANNELS = 8


def frontier_pass(
    model: nn.Module, inputs: Tensor, targets: Tensor | None, wanted: set[str], seed: int
) -> dict[str, float]:
    """The frontier proxies in ``wanted``; each family runs its own seeded pass on its own copy."""
    out: dict[str, float] = {}
    if wanted & _AZ:
        torch.manual_seed(seed)
        out.update(_az_nas(model, inputs, seed))
    if wanted & {"meco", "meco_opt"}:
        torch.manual_seed(seed)
        out.update(_meco(model, inputs, seed, wanted & {"meco", "meco_opt"}))
    if "zico" in wanted:
        if targets is None:  # checked by compute_proxies; kept for direct calls of this helper
            raise ValueError("zico needs targets")
        torch.manual_seed(seed)
        out["zico"] = _zico(model, inputs, targets)
    if wanted & {"swap", "swap_reg"}:
        torch.manual_seed(seed)
        count = _swap(model, inputs)
        if "swap" in wanted:
            out["swap"] = count
        if "swap_reg" in wanted:
            out["swap_reg"] = count * swap_regulariser(model)
    return {k: out[k] for k in wanted}


# ----------------------------------------------------------------------------- AZ-NAS
def feature_blocks(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs AZ-NAS compares, in forward order (see the module docstring)."""
    if isinstance(net, nn.Sequential):
        return list(net)
    trunk: nn.Sequential | nn.ModuleList | None = None
    for child in net.children():
        if isinstance(child, (nn.Sequential, nn.ModuleList)) and (trunk is None or len(child) > len(trunk)):
            trunk = child
    blocks: list[nn.Module] = []
    # A duck-typed probe, on purpose: ``net`` is any nn.Module (a user's own network too), and a
    # ``stem`` submodule, where there is one, is the first block of features.
    stem = getattr(net, "stem", None)
    if isinstance(stem, nn.Module) and stem is not trunk:
        blocks.append(stem)
    if trunk is not None:
        blocks.extend(trunk.children())
    return blocks or [net]


def _as_rows(feature: Tensor) -> Tensor:
    """``(B, C, *spatial)`` -> ``(B * spatial, C)``; ``(B, C)`` stays."""
    if feature.ndim > 2:
        return feature.movedim(1, -1).reshape(-1, feature.shape[1])
    return feature.reshape(feature.shape[0], -1)


def _spectral_entropy(feature: Tensor) -> float:
    rows = _as_rows(feature.detach()).to(torch.float64)
    rows = rows - rows.mean(dim=0, keepdim=True)
    sigma = rows.T @ rows / rows.shape[0]
    s = torch.linalg.eigvalsh(sigma).clamp_min(0.0)  # round-off negatives of a PSD matrix
    total = s.sum()
    if not bool(total > 0):
        return -math.inf  # no variance: the reference's nan, ranked worst
    p = s / total
    return float((-p * torch.log(p + 1e-8)).sum().item())


def _block_trainability(f_in: Tensor, f_out: Tensor, generator: torch.Generator) -> float | None:
    g_out = torch.randint(0, 2, f_out.shape, generator=generator).to(f_out) * 2 - 1
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)
    if g_in is None:
        return None  # the output does not depend on this input
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf  # an identity block (the reference's verdict)
    if g_in.ndim != g_out.ndim:
        return None
    if g_in.ndim > 2 and g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if (
            g_in.ndim != 4
            or stride < 1
            or g_in.shape[2:] != (g_out.shape[2] * stride, g_out.shape[3] * stride)
        ):
            return None
        g_in = F.pixel_unshuffle(g_in, stride)
    a, b = _as_rows(g_in).to(torch.float64), _as_rows(g_out).to(torch.float64)
    s = float(torch.linalg.svdvals(a.T @ b / a.shape[0]).max().item())
    return -s - 1.0 / (s + 1e-6) + 2.0


@contextlib.contextmanager
def _hooked(modules: Iterable[nn.Module], hook: Callable[..., None]) -> Iterator[None]:
    """``hook`` on the forward pass of each of ``modules`` while the block runs, then removed."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _az_nas(model: nn.Module, inputs: Tensor, seed: int) -> dict[str, float]:
    net = _working_copy(model)
    features: list[Tensor] = []

    def keep(_m: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, Tensor) and out.ndim >= 2:
            features.append(out)

    with _hooked(feature_blocks(net), keep):
        net(inputs.detach().to(device=_device(net), dtype=_float_dtype(net)))
    entropies = [_spectral_entropy(f) for f in features]
    expressivity = sum(entropies) if entropies else math.nan
    steps = [b - a for a, b in itertools.pairwise(entropies)]
    progressivity = min(steps) if steps else math.nan
    if any(math.isinf(e) for e in entropies):
        progressivity = -math.inf
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for i in reversed(range(1, len(features))):
        if features[i].requires_grad and features[i - 1].requires_grad:
            score = _block_trainability(features[i - 1], features[i], generator)
            if score is not None:
                scores.append(score)
    trainability = sum(scores) / len(scores) if scores else math.nan
    return {
        "az_expressivity": float(expressivity),
        "az_progressivity": float(progressivity),
        "az_trainability": float(trainability),
    }


# ----------------------------------------------------------------------------- MeCo
def _min_corr_eig(fea: Tensor) -> float:
    """Minimum eigenvalue of the correlation matrix of the rows (undefined entries set to 0)."""
    corr = torch.corrcoef(fea.to(torch.float64)).reshape(fea.shape[0], fea.shape[0])  # 1 row: [[1]]
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr).min().item())


def _meco_forward(net: nn.Module, x: Tensor, seed: int, wanted: set[str]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"meco": [], "meco_opt": []}
    generator = torch.Generator().manual_seed(seed)

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        if not isinstance(out, Tensor) or out.ndim < 3:
            return  # logits: a one-column correlation, 0 in the reference
        fea = out[0].detach().reshape(out.shape[1], -1)
        if fea.shape[1] < 2:
            return  # one position per channel: no correlation, 0 in the reference
        if "meco" in wanted:
            found["meco"].append(_min_corr_eig(fea))
        if "meco_opt" in wanted:
            n = fea.shape[0]
            k = min(_MECO_OPT_CHANNELS, n)
            idx = torch.randperm(n, generator=generator)[:k]
            found["meco_opt"].append(_min_corr_eig(fea[idx]) * n / k)

    with _hooked(net.modules(), hook), torch.no_grad():
        net(x)
    return found


def _meco(model: nn.Module, inputs: Tensor, seed: int, wanted: set[str]) -> dict[str, float]:
    net = _working_copy(model)
    x = inputs.detach()[:1].to(device=_device(net), dtype=_float_dtype(net))
    try:
        found = _meco_forward(net, x, seed, wanted)
    except ValueError:  # a BatchNorm over one value per channel: normalise with running statistics
        for m in net.modules():
            if isinstance(m, _BATCH_NORMS):
                m.eval()
        found = _meco_forward(net, x, seed, wanted)
    return {name: math.fsum(v for v in found[name] if math.isfinite(v)) for name in wanted}


# ----------------------------------------------------------------------------- ZiCo
def _zico(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    net = _working_copy(model)
    device, dtype = _device(net), _float_dtype(net)
    weights = [w for _, w in _scored_weights(net)]
    half = inputs.shape[0] // 2
    grads: list[list[Tensor | None]] = []
    for part in (slice(0, half), slice(half, 2 * half)):
        x = inputs.detach()[part].to(device=device, dtype=dtype)
        y = targets.detach()[part].to(device=device).long()
        loss = F.cross_entropy(_first_tensor(net(x)), y)
        grads.append(list(torch.autograd.grad(loss, weights, allow_unused=True)))
    total = 0.0
    for g1, g2 in zip(*grads, strict=True):
        if g1 is None or g2 is None:
            continue
        g = torch.stack([g1.flatten(), g2.flatten()]).to(torch.float64)
        std = g.std(dim=0, unbiased=False)
        mean_abs = g.abs().mean(dim=0)
        nonzero = std != 0
        ratio = float((mean_abs[nonzero] / std[nonzero]).sum().item())
        if ratio > 0:
            total += math.log(ratio)
    return total


# ----------------------------------------------------------------------------- SWAP
def _swap(model: nn.Module, inputs: Tensor) -> float:
    net = _working_copy(model)
    x = inputs.detach()[:SWAP_SAMPLES].to(device=_device(net), dtype=_float_dtype(net))
    n = x.shape[0]
    weights = 2 ** torch.arange(n, dtype=torch.int64, device=x.device)  # one bit per sample
    codes: list[Tensor] = []

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, Tensor) and out.ndim >= 2:
            on = (out.detach().reshape(n, -1) > 0).to(torch.int64)
            codes.append(torch.unique(weights @ on))  # each unit's pattern over the samples

    with _hooked((m for m in net.modules() if isinstance(m, _ACTIVATIONS)), hook), torch.no_grad():
        net(x)
    if not codes:
        return 0.0
    return float(torch.unique(torch.cat(codes)).numel())


def swap_size_factor(params: float, mu: float = SWAP_MU, sigma: float = SWAP_SIGMA) -> float:
    """SWAP's size factor ``exp(-(P - mu)^2 / sigma)`` of a network with ``params`` parameters.

    ``P = params / 1000``, as in the authors' code (``count_parameters`` counts thousands).

    Example:
        >>> swap_size_factor(1_500_000, mu=1500.0, sigma=1e6)
        1.0
        >>> round(swap_size_factor(500_000, mu=1500.0, sigma=1e6), 4)  # exp(-1)
        0.3679
    """
    p = params / 1e3
    return math.exp(-((p - mu) ** 2) / sigma)


def swap_regulariser(model: nn.Module, mu: float = SWAP_MU, sigma: float = SWAP_SIGMA) -> float:
    """:func:`swap_size_factor` of ``model``'s trainable parameters."""
    return swap_size_factor(float(count_params(model)), mu, sigma)
