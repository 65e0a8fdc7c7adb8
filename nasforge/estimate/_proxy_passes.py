"""The passes behind the classic zero-cost proxies: synflow's positive float64 pass and the one
forward pass of a batch that feeds naswot, jacob_cov, snip, grad_norm, fisher and grasp.

Definitions and the choices that change the numbers are in :mod:`nasforge.estimate._proxies`; the
newer proxies (:mod:`nasforge.estimate._proxies_frontier`) reuse the helpers here (the working copy,
the scored weights, the activations that carry a binary code).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasforge.errors import ConfigError

__all__ = ["DATA_PROXIES", "data_pass", "synflow_pass"]

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


DATA_PROXIES = frozenset({"naswot", "jacob_cov", "snip", "grad_norm", "fisher", "grasp"})
"""The proxies :func:`data_pass` computes from one forward pass of the batch."""


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


def synflow_pass(model: nn.Module, input_shape: tuple[int, ...], seed: int) -> float:
    """synflow of ``model``: positive weights, no BatchNorm, float64, one all-ones input."""
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


def data_pass(
    model: nn.Module, inputs: Tensor, targets: Tensor | None, wanted: set[str], seed: int
) -> dict[str, float]:
    """Those of naswot, jacob_cov, snip, grad_norm, fisher and grasp in ``wanted``, from one forward
    pass of the batch through a working copy of ``model`` (train mode)."""
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
