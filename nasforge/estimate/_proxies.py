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
The passes that compute the classic ones are in :mod:`nasforge.estimate._proxy_passes`; the
estimator that scores search candidates with them is :class:`~nasforge.estimate.ZeroCostEstimator`
(:mod:`nasforge.estimate._zero_cost`).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import torch
from torch import Tensor, nn

from nasforge.errors import ConfigError, DataError, UnknownComponentError
from nasforge.estimate._ensemble import ENSEMBLES
from nasforge.estimate._expressivity import mae_det as mae_det_score
from nasforge.estimate._proxies_frontier import FRONTIER_PROXIES, frontier_pass
from nasforge.estimate._proxy_passes import DATA_PROXIES, data_pass, synflow_pass
from nasforge.hardware import count_flops, count_params
from nasforge.registry import suggest

__all__ = [
    "DEFAULT_PROXIES",
    "PROXIES",
    "Proxy",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
    "check_names",
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
    chosen = check_names(names)
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

    input_shape = tuple(int(d) for d in inputs.shape[1:])
    scores: dict[str, float] = {}
    # torch.manual_seed below also seeds the GPU's generator when the model is there (dropout
    # draws from it): fork that device's generator too, so the caller's is left as it was
    gpu = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpu), torch.enable_grad():
        if "synflow" in wanted:
            scores["synflow"] = synflow_pass(model, input_shape, seed)
        if wanted & DATA_PROXIES:
            scores.update(data_pass(model, inputs, targets, wanted & DATA_PROXIES, seed))
        if wanted & FRONTIER_PROXIES:
            scores.update(frontier_pass(model, inputs, targets, wanted & FRONTIER_PROXIES, seed))
        if "params" in wanted:
            scores["params"] = float(count_params(model))
        if "mae_det" in wanted:
            scores["mae_det"] = mae_det_score(model)
        if "flops" in wanted:  # on a copy: counting runs a forward pass
            torch.manual_seed(seed)
            scores["flops"] = float(count_flops(copy.deepcopy(model), input_shape))
    return {n: scores[n] for n in chosen}


def check_names(names: Sequence[str] | None) -> list[str]:
    """``names`` checked and deduplicated, in order (None: :data:`DEFAULT_PROXIES`).

    Raises:
        UnknownComponentError: for an unknown name (named ensembles are listed as a hint).
        ConfigError: if ``names`` is empty.
    """
    if names is None:
        return list(DEFAULT_PROXIES)
    if isinstance(names, str):
        names = [names]
    chosen: list[str] = []
    for n in names:
        if not isinstance(n, str) or n not in PROXIES:
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

DEFAULT_PROXIES: tuple[str, ...] = tuple(n for n in PROXIES if n not in FRONTIER_PROXIES and n != "mae_det")
