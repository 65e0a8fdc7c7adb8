"""Zero-cost proxies: scores of an untrained network that rank architectures without training.

Each proxy is a function with one signature, ``proxy(model, inputs, targets=None, *, seed=0) ->
float`` (larger means "predicted better"), and :data:`PROXIES` maps their names to them.
:func:`compute_proxies` scores several at once, sharing one forward pass between all the
data-dependent ones. The definitions follow Abdelfattah et al. (2021), "Zero-Cost Proxies for
Lightweight NAS" and their reference code (SamsungLabs/zero-cost-nas), which sums every per-weight
score over the weights of the convolution and linear layers (biases and normalisation parameters
are not scored):

============ ================================================================= =================
name         score                                                             data it uses
============ ================================================================= =================
synflow      ``sum |w * dR/dw|`` with ``R = sum(f(1))``: every parameter made  input shape only
             positive (``|w|``), BatchNorm removed, float64, one all-ones input (data-free)
naswot       ``log|det K|``, ``K[i, j]`` = number of activation units on which inputs
             samples ``i`` and ``j`` share their binary code (input > 0)
             (Mellor et al. 2021)
jacob_cov    ``-sum(log(v + k) + 1 / (v + k))``, ``v`` the eigenvalues of the  inputs
             correlation matrix of the per-sample input gradients of
             ``sum(f(x))``, ``k = 1e-5`` (Mellor et al. 2020, v1)
snip         ``sum |w * dL/dw|``, ``L`` the cross-entropy of the batch         inputs + targets
grad_norm    ``sum over layers of ||dL/dW||_2`` (per-layer norms, summed)      inputs + targets
fisher       ``sum over layers, output channels c of 0.5 * mean_n (sum_hw      inputs + targets
             a * dL/da)^2 * fan_in``, ``a`` the layer's output (the reference
             spreads the channel score over the channel's ``fan_in`` weights)
grasp        ``-sum w * (H g)``, ``g = dL/dw``, ``H`` the Hessian of ``L``     inputs + targets
params       trainable parameters (:func:`nasforge.hardware.count_params`)     none
flops        forward FLOPs of one input (:func:`nasforge.hardware.count_flops`) input shape
mae_det      MAE-DET / DeepMAD backbone entropy ``sum_s w_s (log C_s + sum_l   none (closed form,
             1/2 log(c_l k_l^2))`` (:mod:`nasforge.estimate._expressivity`)     no forward pass)
============ ================================================================= =================

Newer proxies (AZ-NAS's ``az_expressivity``, ``az_progressivity``, ``az_trainability``; ``meco``,
``meco_opt``, ``zico``, ``swap``, ``swap_reg``) are defined in :mod:`nasforge.estimate._proxies_frontier`
and registered here with the same contract. :data:`DEFAULT_PROXIES` stays the nine above.

How the model is run (a choice, documented because it changes the numbers):

- The scored model is never touched: every proxy works on a ``copy.deepcopy`` of it, so its
  weights, buffers (BatchNorm running statistics), train/eval flags, ``requires_grad`` flags and
  ``.grad`` fields stay as they were. torch's global random generator is forked
  (:func:`torch.random.fork_rng`) and seeded with ``seed`` before each pass, so scores are
  reproducible, independent of which other proxies are computed alongside, and the caller's random
  stream is left alone.
- **Data-dependent proxies** run the copy in **train mode**, as the reference code does (the
  networks it scores are freshly built, hence in train mode): BatchNorm normalises with the batch's
  own statistics. Freshly initialised running statistics (mean 0, variance 1) would say nothing
  about the data. One forward pass of the batch feeds all of them; each backward pass differentiates
  that graph.
- **synflow** follows the reference's ``synflow`` (``bn=False``): BatchNorm layers are replaced by
  identities, the copy is in eval mode (no dropout), every parameter and buffer is replaced by its
  absolute value, and the pass runs in float64 on a single all-ones input: the score is then a
  polynomial in ``|w|`` with no cancellation. Tanaka et al.'s original code keeps BatchNorm in eval
  mode instead; for a freshly initialised network (running mean 0, variance 1, weight 1, bias 0)
  that is the identity up to a factor ``(1 + eps) ** -0.5`` per layer, so the two agree to ~1e-5
  relative per BatchNorm on the path. float64 holds the NB201 networks' values (around 1e+30 to
  1e+50 at 32x32) with a wide margin; a score beyond the float64 range comes back as ``inf``.
- naswot and jacob_cov need at least two samples; a model whose activation codes are all identical
  has a singular kernel and a naswot of ``-inf``; a model whose output does not depend on its
  input (e.g. an NB201 cell of ``none`` edges) has an undefined correlation and a jacob_cov of
  ``nan``. Both are returned as such (they mean "worst"; :func:`nasforge.estimate.rank_vote` ranks
  them last).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from nasforge.estimate import compute_proxies
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x, y = torch.randn(16, 3, 2, 2), torch.randint(0, 3, (16,))
    >>> scores = compute_proxies(net, x, y, names=["synflow", "snip", "params"])
    >>> sorted(scores), scores["params"]
    (['params', 'snip', 'synflow'], 131.0)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.estimate._base import Estimator, TrialContext
from nasforge.registry import suggest

if TYPE_CHECKING:
    from nasforge.data import Task
    from nasforge.space import Architecture

__all__ = [
    "DEFAULT_PROXIES",
    "PROXIES",
    "Proxy",
    "ZeroCostEstimator",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "compute_proxies",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "mae_det",
    "meco",
    "meco_opt",
    "naswot",
    "params",
    "snip",
    "swap",
    "swap_reg",
    "synflow",
    "zico",
]
# defined in _proxies_frontier, registered below
_FRONTIER = (
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "meco",
    "meco_opt",
    "zico",
    "swap",
    "swap_reg",
)

# Layers whose weights the gradient-based proxies score (the reference scores Conv2d and Linear).
_SCORED_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BATCH_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# Activations whose input sign is naswot's binary code (for ReLU-like units: on / off).
_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Mish,
)
_JACOB_COV_K = 1e-5


class ProxyFunction(Protocol):
    """The common signature of every proxy."""

    def __call__(
        self, model: nn.Module, inputs: Tensor, targets: Tensor | None = None, *, seed: int = 0
    ) -> float: ...


@dataclass(frozen=True)
class Proxy:
    """A registered proxy: its function and what it needs.

    Attributes:
        name: the registry name.
        fn: the proxy function (common signature, see :class:`ProxyFunction`).
        needs_targets: whether it uses labels (the loss-based proxies).
        data: ``"none"``, ``"shape"`` (only the input shape) or ``"inputs"`` (the batch itself).
        summary: one line for listings.
    """

    name: str
    fn: ProxyFunction
    needs_targets: bool
    data: str
    summary: str


# ----------------------------------------------------------------------------- the passes
def _working_copy(model: nn.Module) -> nn.Module:
    """A deep copy to score: every parameter trainable, no gradients, train mode."""
    net = copy.deepcopy(model)
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    return net.train()


def _scored_weights(net: nn.Module) -> list[tuple[nn.Module, nn.Parameter]]:
    """The (layer, weight) pairs the gradient proxies sum over, each shared weight once."""
    seen: set[int] = set()
    out: list[tuple[nn.Module, nn.Parameter]] = []
    for m in net.modules():
        weight = getattr(m, "weight", None)
        if isinstance(m, _SCORED_LAYERS) and isinstance(weight, nn.Parameter) and id(weight) not in seen:
            seen.add(id(weight))
            out.append((m, weight))
    return out


def _first_tensor(output: Any) -> Tensor:
    """The logits of a forward result (models returning ``(features, logits)`` tuples give the last)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[-1], Tensor):
        return output[-1]
    raise ConfigError(f"proxies need a model that returns a tensor of logits, got {type(output).__name__}")


def _synflow_pass(model: nn.Module, input_shape: tuple[int, ...], seed: int) -> float:
    net = copy.deepcopy(model)
    _remove_batch_norm(net)
    net.eval().double()
    with torch.no_grad():
        for tensor in (*net.parameters(), *net.buffers()):
            if tensor.is_floating_point():
                tensor.abs_()
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    device = _device(net)
    torch.manual_seed(seed)
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    out = net(x)
    if isinstance(out, Mapping):  # a detector's maps (heatmap, size, offset): R sums them all
        torch.stack([t.sum() for t in out.values()]).sum().backward()
    else:
        _first_tensor(out).sum().backward()
    total = torch.zeros((), dtype=torch.float64, device=device)
    for _, w in _scored_weights(net):
        if w.grad is not None:
            total += (w * w.grad).abs().sum()
    return float(total.item())


def _remove_batch_norm(net: nn.Module) -> None:
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _BATCH_NORMS):
                setattr(module, name, nn.Identity())


def _data_pass(
    model: nn.Module, inputs: Tensor, targets: Tensor | None, wanted: set[str], seed: int
) -> dict[str, float]:
    """naswot, jacob_cov, snip, grad_norm, fisher and grasp from one forward pass of the batch."""
    net = _working_copy(model)
    device, dtype = _device(net), _float_dtype(net)
    x = inputs.detach().to(device=device, dtype=dtype).clone()
    need_jacobian = "jacob_cov" in wanted
    need_loss = bool(wanted & {"snip", "grad_norm", "fisher", "grasp"})
    x.requires_grad_(need_jacobian)
    layers = _scored_weights(net)
    outputs: dict[int, list[Tensor]] = {}  # layer index -> its outputs (fisher)
    kernel: list[Tensor] = []  # naswot's K, accumulated over the activations
    handles = []
    if "fisher" in wanted:
        for i, (layer, _) in enumerate(layers):

            def keep(_m: nn.Module, _inp: Any, out: Any, i: int = i) -> None:
                if isinstance(out, Tensor) and out.requires_grad:
                    outputs.setdefault(i, []).append(out)

            handles.append(layer.register_forward_hook(keep))
    if "naswot" in wanted:
        n = x.shape[0]
        kernel.append(torch.zeros((n, n), dtype=torch.float64, device=device))

        def count(_m: nn.Module, inp: Any, _out: Any) -> None:
            # Agreements = (D + s_i . s_j) / 2 with s = +-1 codes: one exact float32 matmul
            # (integer sums far below 2**24) instead of K = c c^T + (1 - c)(1 - c)^T.
            s = (inp[0].detach().flatten(1) > 0).to(torch.float32) * 2 - 1
            kernel[0] += ((s @ s.T).to(torch.float64) + s.shape[1]) / 2

        handles.extend(m.register_forward_hook(count) for m in net.modules() if isinstance(m, _ACTIVATIONS))

    out: dict[str, float] = {}
    try:
        torch.manual_seed(seed)
        logits = _first_tensor(net(x))
    finally:
        for h in handles:
            h.remove()
    if "naswot" in wanted:
        out["naswot"] = float(torch.linalg.slogdet(kernel[0])[1].item())

    if need_loss:
        if targets is None:  # checked by compute_proxies; kept for direct calls of this helper
            raise ConfigError("loss-based proxies need targets")
        y = targets.detach().to(device=device).long()
        loss = F.cross_entropy(logits, y)
        weights = [w for _, w in layers]
        acts = [(i, a) for i, acts_i in outputs.items() for a in acts_i]
        grads = torch.autograd.grad(
            loss,
            [*weights, *(a for _, a in acts)],
            retain_graph=need_jacobian or "grasp" in wanted,
            create_graph="grasp" in wanted,
            allow_unused=True,
        )
        g_w, g_a = grads[: len(weights)], grads[len(weights) :]
        if "snip" in wanted:
            out["snip"] = _sum(
                ((w * g).abs().sum() for w, g in zip(weights, g_w, strict=True) if g is not None)
            )
        if "grad_norm" in wanted:
            out["grad_norm"] = _sum(g.norm() for g in g_w if g is not None)
        if "fisher" in wanted:
            terms = []
            for (i, a), g in zip(acts, g_a, strict=True):
                if g is None:
                    continue
                a, g = a.detach(), g.detach()
                per_channel = (a * g).sum(dim=tuple(range(2, a.ndim))) if a.ndim > 2 else a * g
                fan_in = weights[i][0].numel()  # one output channel's weights
                terms.append(0.5 * per_channel.pow(2).mean(0).sum() * fan_in)
            out["fisher"] = _sum(terms)
        if "grasp" in wanted:
            pairs = [(w, g) for w, g in zip(weights, g_w, strict=True) if g is not None]
            z = _tensor_sum((g.detach() * g).sum() for _, g in pairs)
            if z is None or not z.requires_grad:  # the gradient does not depend on the weights
                out["grasp"] = 0.0
            else:
                hg = torch.autograd.grad(
                    z, [w for w, _ in pairs], retain_graph=need_jacobian, allow_unused=True
                )
                out["grasp"] = 0.0 - _sum(
                    (w.detach() * h).sum() for (w, _), h in zip(pairs, hg, strict=True) if h is not None
                )

    if need_jacobian:
        (jac,) = torch.autograd.grad(logits.sum(), x, allow_unused=True)
        jac = torch.zeros_like(x) if jac is None else jac
        out["jacob_cov"] = _jacob_cov_score(jac.flatten(1))
    return out


def _jacob_cov_score(jac: Tensor) -> float:
    rows = jac.detach().to(torch.float64)
    if bool((rows.std(dim=1) == 0).any()):
        return math.nan  # a constant row has no correlation: the score is undefined
    v = torch.linalg.eigvalsh(torch.corrcoef(rows))
    k = _JACOB_COV_K
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum().item())


def _sum(values: Iterable[Tensor]) -> float:
    total = _tensor_sum(values)
    return 0.0 if total is None else float(total.item())


def _tensor_sum(values: Iterable[Tensor]) -> Tensor | None:
    total: Tensor | None = None
    for v in values:
        v = v.to(torch.float64)
        total = v if total is None else total + v
    return total


def _device(net: nn.Module) -> torch.device:
    for t in (*net.parameters(), *net.buffers()):
        return t.device
    return torch.device("cpu")


def _float_dtype(net: nn.Module) -> torch.dtype:
    for t in (*net.parameters(), *net.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


# ----------------------------------------------------------------------------- the public API
_DATA_PROXIES = frozenset({"naswot", "jacob_cov", "snip", "grad_norm", "fisher", "grasp"})
_FRONTIER_SET = frozenset(_FRONTIER)


def compute_proxies(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    names: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Score ``model`` with several zero-cost proxies (see the module docstring for definitions).

    The model is left exactly as it was, and so is torch's global random generator.

    Args:
        model: a classifier returning logits ``(batch, classes)``, untrained as a rule.
        inputs: a batch ``(batch, *input_shape)``; synflow and flops use only its shape, the other
            data-dependent proxies the values (at least 2 samples).
        targets: integer labels ``(batch,)``; needed by snip, grad_norm, fisher and grasp.
        names: proxies to compute, in the order of the result (any of :data:`PROXIES`); default
            :data:`DEFAULT_PROXIES` (the classic nine).
        seed: seeds torch's (forked) global generator before each pass, for layers that draw random
            numbers (dropout); the same seed gives the same scores.

    Returns:
        ``{name: score}`` as Python floats, in the order of ``names``.

    Raises:
        UnknownComponentError: for an unknown proxy name (with a did-you-mean suggestion).
        ConfigError: if a proxy needs targets that were not given, or ``names`` is empty.
        DataError: if ``inputs`` / ``targets`` have unusable shapes.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
        >>> s = compute_proxies(net, x, y, names=["naswot", "grad_norm"], seed=1)
        >>> s == compute_proxies(net, x, y, names=["naswot", "grad_norm"], seed=1)
        True
    """
    chosen = _check_names(names)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"compute_proxies needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, Tensor) or inputs.ndim < 2 or inputs.shape[0] < 1:
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise DataError(f"inputs must be a batch tensor (batch, *input_shape), got {got}")
    wanted = set(chosen)
    needs = [n for n in chosen if PROXIES[n].needs_targets]
    if needs:
        if targets is None:
            raise ConfigError(
                f"proxies {needs} use labels: pass targets (integer class labels, one per input), "
                "or choose among the label-free proxies "
                f"{[n for n, p in PROXIES.items() if not p.needs_targets]}"
            )
        if not isinstance(targets, Tensor) or targets.shape != inputs.shape[:1]:
            got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
            raise DataError(f"targets must have shape ({inputs.shape[0]},) to match the inputs, got {got}")
    pairwise = [n for n in chosen if n in {"naswot", "jacob_cov", "zico", "swap", "swap_reg"}]
    if pairwise and inputs.shape[0] < 2:
        raise DataError(
            f"{' and '.join(pairwise)} compare samples: give at least 2 inputs, got {inputs.shape[0]}"
        )

    from nasforge.hardware import count_flops, count_params

    input_shape = tuple(int(d) for d in inputs.shape[1:])
    scores: dict[str, float] = {}
    # torch.manual_seed below also seeds the GPU's generator when the model is there (dropout
    # draws from it): fork that device's generator too, so the caller's is left as it was
    gpu = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpu), torch.enable_grad():
        if "synflow" in wanted:
            scores["synflow"] = _synflow_pass(model, input_shape, seed)
        if wanted & _DATA_PROXIES:
            scores.update(_data_pass(model, inputs, targets, wanted & _DATA_PROXIES, seed))
        if wanted & _FRONTIER_SET:
            from nasforge.estimate._proxies_frontier import frontier_pass

            scores.update(frontier_pass(model, inputs, targets, wanted & _FRONTIER_SET, seed))
        if "params" in wanted:
            scores["params"] = float(count_params(model))
        if "mae_det" in wanted:
            from nasforge.estimate._expressivity import mae_det as mae_det_score

            scores["mae_det"] = mae_det_score(model)
        if "flops" in wanted:  # on a copy: counting runs a forward pass
            torch.manual_seed(seed)
            scores["flops"] = float(count_flops(copy.deepcopy(model), input_shape))
    return {n: scores[n] for n in chosen}


def _check_names(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return list(DEFAULT_PROXIES)
    if isinstance(names, str):
        names = [names]
    chosen: list[str] = []
    for n in names:
        if not isinstance(n, str) or n not in PROXIES:
            from nasforge.estimate._ensemble import ENSEMBLES

            valid = list(PROXIES)
            hint = suggest(n, valid + list(ENSEMBLES)) if isinstance(n, str) else ""
            raise UnknownComponentError(
                f"unknown proxy {n!r}.{hint} Valid proxy names: {', '.join(valid)}. "
                f"Named ensembles (where a list of proxies is ranked): {', '.join(ENSEMBLES)}."
            )
        if n not in chosen:
            chosen.append(n)
    if not chosen:
        raise ConfigError(f"names is empty: choose at least one proxy of {list(PROXIES)}")
    return chosen


_SUMMARIES: dict[str, tuple[str, str]] = {  # name -> (data it uses, one-line definition)
    "synflow": ("shape", "Synaptic flow: sum |w * dR/dw|, R = sum f(1) with |w|, no BatchNorm, float64."),
    "naswot": ("inputs", "NASWOT: log|det K| of the activation-code agreement kernel of the batch."),
    "jacob_cov": (
        "inputs",
        "Jacobian covariance: -sum(log(v+k) + 1/(v+k)), v eigenvalues of the correlation.",
    ),
    "snip": ("inputs", "SNIP: sum |w * dL/dw| over conv/linear weights."),
    "grad_norm": ("inputs", "Sum over conv/linear layers of the L2 norm of dL/dW."),
    "fisher": ("inputs", "Fisher: sum of 0.5 * mean_n (sum_hw a * dL/da)^2 per output channel x fan-in."),
    "grasp": ("inputs", "GraSP: -sum w * (H g), g = dL/dw, H the loss Hessian."),
    "params": ("none", "Trainable parameter count."),
    "flops": ("shape", "Forward FLOPs of one input (torch.utils.flop_counter)."),
    "az_expressivity": ("inputs", "AZ-NAS expressivity: sum of block outputs' channel-covariance entropies."),
    "az_progressivity": ("inputs", "AZ-NAS progressivity: min increase of that entropy between blocks."),
    "az_trainability": ("inputs", "AZ-NAS trainability: mean 2 - s - 1/s, s a block's top Jacobian gain."),
    "meco": ("inputs", "MeCo: sum of min eigenvalues of channel correlations, one sample."),
    "meco_opt": ("inputs", "MeCo-opt: MeCo on 8 random channels per layer, times C/8."),
    "zico": ("inputs", "ZiCo: sum over layers of log sum mean|g| / std(g), two half batches."),
    "swap": ("inputs", "SWAP: distinct sample-wise activation patterns over 16 samples."),
    "swap_reg": ("inputs", "SWAP times the size regulariser exp(-(P - mu)^2 / sigma)."),
    "mae_det": ("none", "MAE-DET: sum_s w_s (log C_s + sum 1/2 log(c k^2)), closed form, no forward pass."),
}
_LABELLED = frozenset({"snip", "grad_norm", "fisher", "grasp", "zico"})


def _single(name: str) -> ProxyFunction:
    def proxy(model: nn.Module, inputs: Tensor, targets: Tensor | None = None, *, seed: int = 0) -> float:
        return compute_proxies(model, inputs, targets, names=[name], seed=seed)[name]

    proxy.__name__ = proxy.__qualname__ = name
    proxy.__doc__ = (
        f"{_SUMMARIES[name][1]}\n\n"
        f"    Signature and guarantees as :func:`compute_proxies` with ``names=[{name!r}]``."
    )
    return proxy


synflow = _single("synflow")
naswot = _single("naswot")
jacob_cov = _single("jacob_cov")
snip = _single("snip")
grad_norm = _single("grad_norm")
fisher = _single("fisher")
grasp = _single("grasp")
params = _single("params")
mae_det = _single("mae_det")
flops = _single("flops")
az_expressivity = _single("az_expressivity")
az_progressivity = _single("az_progressivity")
az_trainability = _single("az_trainability")
meco = _single("meco")
meco_opt = _single("meco_opt")
zico = _single("zico")
swap = _single("swap")
swap_reg = _single("swap_reg")

_FUNCTIONS: dict[str, ProxyFunction] = {
    f.__name__: f  # type: ignore[attr-defined]
    for f in (synflow, naswot, jacob_cov, snip, grad_norm, fisher, grasp, params, flops)
}
_FUNCTIONS.update(
    (f.__name__, f)  # type: ignore[attr-defined]
    for f in (
        az_expressivity,
        az_progressivity,
        az_trainability,
        meco,
        meco_opt,
        zico,
        swap,
        swap_reg,
        mae_det,
    )
)
PROXIES: Mapping[str, Proxy] = MappingProxyType(
    {
        name: Proxy(
            name=name, fn=_FUNCTIONS[name], needs_targets=name in _LABELLED, data=data, summary=summary
        )
        for name, (data, summary) in _SUMMARIES.items()
    }
)
"""The proxies by name, in a fixed order: the classic nine (:data:`DEFAULT_PROXIES`), then the newer ones."""

DEFAULT_PROXIES: tuple[str, ...] = tuple(n for n in PROXIES if n not in _FRONTIER and n != "mae_det")


# ----------------------------------------------------------------------------- the estimator
class ZeroCostEstimator(Estimator):
    """Scores each candidate with zero-cost proxies instead of training it (registered as ``zero_cost``).

    The network is built with the trial's seed (as :class:`~nasforge.estimate.TrainEstimator`
    does) and scored by :func:`compute_proxies` on one fixed batch, the same for every trial so
    that scores compare:

    - ``data="task"`` (the default when a task is given): ``batch_size`` training images of the
      task, drawn once with ``data_seed``, with their labels (a
      :class:`~nasforge.data.DetectionTask` has no image labels: uniform random ones);
    - ``data="random"`` (the default without a task): standard-normal inputs of the network's input
      shape and uniform random labels, drawn with ``data_seed``. synflow, params and flops use no
      data at all, so they do not depend on this choice.

    Metrics returned: one per proxy (``synflow``, ``naswot``, ...) and ``proxy_seconds`` (wall
    time of scoring, building excluded). Larger proxy values mean "predicted better"; use one as
    the objective, e.g. ``objectives=["synflow"]``. A ``-inf`` naswot or ``nan`` jacob_cov (see
    :mod:`nasforge.estimate._proxies`) makes a trial that optimises it fail, which is the right
    verdict for such networks.

    Args:
        task: the dataset; optional. Without one the input shape and class count come from
            ``input_shape`` / ``num_classes`` or from the architecture's bound space.
        proxies: proxy names; default the classic nine (:data:`DEFAULT_PROXIES`). A named ensemble
            (:data:`~nasforge.estimate.ENSEMBLES`, e.g. ``az_nas``) stands for its members.
        batch_size: samples in the scoring batch (>= 2).
        data: ``"task"``, ``"random"`` or ``"auto"`` (task if there is one).
        data_seed: seed of the batch draw.
        input_shape: ``(C, H, W)`` when there is no task.
        num_classes: class count when there is no task.
        threads: torch threads while scoring; default every core this process may use.
        device: where networks are scored: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``,
            ``mps`` (see :func:`nasforge._device.resolve_device`); the batch is drawn on the CPU as
            before and moved, and the scores are computed in float32 (synflow in float64). Each
            trial records ``device``, ``device_name``, ``amp`` (off), ``torch_version`` and
            ``cuda_version``.

    Raises:
        ConfigError: on an unknown proxy, bad batch size or data choice, or an unusable device.

    Example:
        >>> import nasforge as nf
        >>> from nasforge.estimate import TrialContext, ZeroCostEstimator
        >>> space = nf.spaces.NB201Space(C=4, N=1).bind((3, 8, 8), 10)
        >>> est = ZeroCostEstimator(proxies=["synflow", "naswot"], batch_size=8)
        >>> m = est.evaluate(space.from_ops([3, 3, 3, 1, 3, 2]), TrialContext(0, seed=0))
        >>> sorted(m)[:4], m["device"]
        (['amp', 'cuda_version', 'device', 'device_name'], 'cpu')
    """

    def __init__(
        self,
        task: Task | None = None,
        *,
        proxies: Sequence[str] | None = None,
        batch_size: int = 64,
        data: str = "auto",
        data_seed: int = 0,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        threads: int | None = None,
        device: str = "auto",
    ) -> None:
        from nasforge._device import check_device_name, resolve_device
        from nasforge.data import DetectionTask, Task

        if task is not None and not isinstance(task, Task | DetectionTask):
            raise ConfigError(
                "ZeroCostEstimator takes a Task (nasforge.datasets.load(...)), a DetectionTask or None, "
                f"got {type(task).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ConfigError(f"batch_size must be an integer >= 2, got {batch_size=}")
        if data not in ("auto", "task", "random"):
            raise ConfigError(f"data must be 'auto', 'task' or 'random', got {data=}")
        if data == "task" and task is None:
            raise ConfigError("data='task' needs a task; pass task=... or use data='random'")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer, got {threads=}")
        from nasforge.estimate._ensemble import resolve_proxies

        self.task = task
        # an ensemble name (az_nas) stands for its members: the estimator scores one network
        self.proxies = tuple(_check_names(None if proxies is None else resolve_proxies(proxies)[0]))
        self.batch_size = batch_size
        self.data = data
        self.data_seed = int(data_seed)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.num_classes = num_classes
        self.threads = threads
        resolve_device(device)  # unusable here: an error now, not in every trial
        self.device = check_device_name(device)
        self._batch: tuple[Tensor, Tensor] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_batch"] = None  # redrawn (identically) on the other side
        return state

    def _shape(self, arch: Architecture) -> tuple[tuple[int, int, int], int]:
        if self.task is not None:
            return self.task.input_shape, self.task.num_classes
        shape = self.input_shape or arch.space.input_shape
        classes = self.num_classes or arch.space.num_classes
        if shape is None or classes is None or len(shape) != 3:
            raise ConfigError(
                "ZeroCostEstimator needs the input shape and class count: give it a task, or "
                "input_shape=(C, H, W) and num_classes, or bind the space with space.bind(...)"
            )
        return (int(shape[0]), int(shape[1]), int(shape[2])), int(classes)

    def batch(self, input_shape: tuple[int, int, int], num_classes: int) -> tuple[Tensor, Tensor]:
        """The fixed ``(inputs, targets)`` batch every architecture is scored on."""
        if self._batch is None or tuple(self._batch[0].shape[1:]) != input_shape:
            generator = torch.Generator().manual_seed(self.data_seed)
            if self.task is not None and self.data in ("auto", "task"):
                n = self.task.x_train.shape[0]
                idx = torch.randperm(n, generator=generator)[: self.batch_size]
                y_train = getattr(self.task, "y_train", None)
                if y_train is None:  # a DetectionTask: its images, uniform random class labels
                    y = torch.randint(0, num_classes, (len(idx),), generator=generator)
                    self._batch = (self.task.x_train[idx], y)
                else:
                    self._batch = (self.task.x_train[idx], y_train[idx])
            else:
                x = torch.randn((self.batch_size, *input_shape), generator=generator)
                y = torch.randint(0, num_classes, (self.batch_size,), generator=generator)
                self._batch = (x, y)
        return self._batch

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        from nasforge._device import device_info, resolve_device, synchronize
        from nasforge._threads import torch_threads
        from nasforge.estimate._train import build_seeded, default_threads

        device = resolve_device(self.device)
        shape, classes = self._shape(arch)
        with torch_threads(self.threads or default_threads()):
            model = build_seeded(arch, shape, classes, ctx.seed).to(device)
            x, y = self.batch(shape, classes)
            x, y = x.to(device), y.to(device)
            start = time.perf_counter()
            scores = compute_proxies(model, x, y, names=self.proxies, seed=ctx.seed)
            synchronize(device)
            seconds = time.perf_counter() - start
        return {**scores, "proxy_seconds": round(seconds, 4), **device_info(device, "off")}

    def __repr__(self) -> str:
        where = self.task.name if self.task is not None else f"input_shape={self.input_shape}"
        return f"ZeroCostEstimator({where}, proxies={list(self.proxies)}, batch_size={self.batch_size})"
