"""DARTS and GDAS: the bilevel loop finds a planted operation, proposals are trials, state resumes.

The registry-driven conformance suite runs on a toy space that has no supernet, so these two are
tested here instead, on the NB201 space (tiny supernets, scikit-learn digits).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.estimate import Estimator, TrialContext
from nasforge.experiment import Experiment, TrialState
from nasforge.space import Architecture
from nasforge.strategy._differentiable import _ranked_cells
from nasforge.testing import toy_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPS = ["none", "skip_connect", "avg_pool_3x3"]  # NB201 order; the planted net gives them its own meanings
PLANTED = 1  # skip_connect: the image itself


class PlantedNet(nn.Module):
    """Six 'edges', each choosing among: zeros, the image itself (the planted op), or loud noise.

    The edges' outputs are summed and classified by a linear layer, so the loss falls only as the
    architecture weights move to operation 1 on every edge.
    """

    def __init__(self, task: Any) -> None:
        super().__init__()
        c, h, w = task.input_shape
        self.head = nn.Linear(c * h * w, task.num_classes)

    def _ops(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = x.flatten(1)
        return [torch.zeros_like(f), f, 3.0 * torch.randn_like(f)]

    def forward(self, x: torch.Tensor, *, weights: Any = None, hard: Any = None) -> torch.Tensor:
        ops = self._ops(x)
        mixed = torch.zeros_like(ops[0])
        for e in range(6):
            if weights is not None:
                mixed = mixed + sum(weights[e, k] * ops[k] for k in range(3))
            else:
                index, hw = hard
                k = int(index[e])
                mixed = mixed + hw[e, k] * ops[k] + sum(hw[e, j] for j in range(3) if j != k)
        return self.head(mixed)


def _planted(cls: type) -> type:
    class Planted(cls):  # type: ignore[misc, valid-type]
        def _build_supernet(self, task: Any, ops: tuple[str, ...]) -> nn.Module:
            return PlantedNet(task)

    return Planted


@pytest.fixture(scope="module")
def digits():
    return nf.datasets.load("digits")


def _strategy(cls: type, digits: Any, **options: Any) -> Any:
    strategy = cls(**{"fraction": 1.0, "threads": 1, "seed": 0, **options})
    strategy.setup(nf.spaces.NB201Space(ops=OPS, C=4, N=1), nf.Objective(["val_accuracy"]))
    strategy.set_task(digits)
    return strategy


@pytest.mark.parametrize("cls", [nf.strategy.DARTS, nf.strategy.GDAS], ids=["darts", "gdas"])
def test_finds_the_planted_operation(cls, digits):
    strategy = _strategy(_planted(cls), digits, epochs=6, arch_lr=0.05, lr=0.05, max_skip=None)
    arch = strategy.ask()
    assert [arch.params[f"edge{i}"] for i in range(6)] == [OPS[PLANTED]] * 6
    alpha = np.asarray(strategy.alpha)
    assert (alpha.argmax(axis=1) == PLANTED).all()
    entropies = [h["entropy"] for h in strategy.history]
    assert entropies[-1] < entropies[0] < np.log(3) + 1e-6  # the distribution sharpens


def test_collapse_guard_keeps_the_alphas_before_the_collapse(digits):
    # the planted operation is skip_connect: every edge turns to it, which the guard takes for a collapse
    options = {"epochs": 6, "arch_lr": 0.05, "lr": 0.05}
    free = _strategy(_planted(nf.strategy.DARTS), digits, max_skip=None, **options)
    free.ask()
    skips = [h["cell"].count("skip_connect") for h in free.history]
    tripped = next(e for e, n in enumerate(skips, start=1) if e >= 2 and n > 2)

    guarded = _strategy(_planted(nf.strategy.DARTS), digits, max_skip=2, guard_from=2, **options)
    guarded.ask()
    assert guarded.guard == {
        "epoch": tripped,
        "guarded_edges": skips[tripped - 1],
        "kept": f"epoch {tripped - 1}",
    }
    assert len(guarded.history) == tripped

    def strip(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(guarded.history) == strip(free.history[:tripped])  # same seed: same training until then
    kept_cell = [OPS[k] for k in np.asarray(guarded.alpha).argmax(axis=1)]
    assert kept_cell == free.history[tripped - 2]["cell"]


def test_proposals_follow_the_learned_distribution():
    alpha = np.array([[2.0, 0.0, -1.0]] * 5 + [[0.0, 1.0, 0.5]])
    order = _ranked_cells(alpha)
    assert order[0] == (0, 0, 0, 0, 0, 1)
    assert order[1] == (0, 0, 0, 0, 0, 2)  # the smallest drop in log-probability comes next
    assert len(order) == len(set(order)) == 3**6


class ConvCount(Estimator):
    """Cheap stand-in for training: the number of 3x3 convolutions (task given for the supernet)."""

    def __init__(self, task: Any, fail_on: str | None = None) -> None:
        self.task = task
        self.fail_on = fail_on

    def evaluate(self, arch: Architecture, ctx: TrialContext) -> dict[str, Any]:
        ops = [arch.params[f"edge{i}"] for i in range(6)]
        if self.fail_on is not None and ops[0] == self.fail_on:
            raise nf.TrialFailed(f"planted failure on {self.fail_on}")
        return {"score": float(ops.count("nor_conv_3x3"))}


OPTIONS = {"epochs": 2, "fraction": 0.3, "C": 2, "N": 1, "threads": 1}


@pytest.mark.parametrize("name", ["darts", "gdas"])
def test_in_an_experiment_the_derived_cell_is_the_first_trial(name, digits):
    space = nf.spaces.NB201Space(C=2, N=1)
    exp = Experiment("oneshot", space=space, objectives=["score"], seed=0)
    exp.run(name, ConvCount(digits, fail_on="avg_pool_3x3"), n_trials=6, strategy_options=OPTIONS)
    strategy = exp.strategy
    assert strategy is not None
    assert exp.trials[0].architecture.key == strategy.derived().key
    keys = [t.architecture.key for t in exp.trials]
    assert len(keys) == 6 and len(set(keys)) == 6
    assert {t.state for t in exp.trials} <= {TrialState.COMPLETE, TrialState.FAIL}
    state = strategy.state_dict()
    assert json.loads(json.dumps(state)) == state
    assert len(state["history"]) == 2 and np.asarray(state["alpha"]).shape == (6, 5)
    # the same seed gives the same search
    again = Experiment("oneshot", space=space, objectives=["score"], seed=0)
    again.run(name, ConvCount(digits, fail_on="avg_pool_3x3"), n_trials=6, strategy_options=OPTIONS)
    assert [t.architecture.key for t in again.trials] == keys


def test_resume_reuses_the_trained_alphas(digits, monkeypatch):
    space = nf.spaces.NB201Space(C=2, N=1)
    straight = Experiment("oneshot", space=space, objectives=["score"], seed=3)
    straight.run("darts", ConvCount(digits), n_trials=5, strategy_options=OPTIONS)
    first = Experiment("oneshot", space=space, objectives=["score"], seed=3)
    first.run("darts", ConvCount(digits), n_trials=2, strategy_options=OPTIONS)

    def no_training(self: Any, task: Any = None) -> Any:
        raise AssertionError("a resumed search must not train the supernet again")

    monkeypatch.setattr(nf.strategy.DifferentiableSearch, "search", no_training)
    resumed = Experiment("oneshot", space=space, objectives=["score"], storage=first.storage)
    resumed.run("darts", ConvCount(digits), n_trials=5, strategy_options=OPTIONS)
    assert [t.architecture.key for t in resumed.trials] == [t.architecture.key for t in straight.trials]


def test_clear_errors(digits):
    with pytest.raises(ConfigError, match="nb201"):
        Experiment("x", space=toy_space(), objectives=["score"]).set_strategy("darts")
    strategy = nf.strategy.DARTS(epochs=1, seed=0)
    strategy.setup(nf.spaces.NB201Space(C=2, N=1), nf.Objective(["val_accuracy"]))
    with pytest.raises(ConfigError, match="training estimator"):
        strategy.ask()
    with pytest.raises(ConfigError, match="fraction"):
        nf.strategy.DARTS(fraction=0)
    with pytest.raises(ConfigError, match="tau"):
        nf.strategy.GDAS(tau_min=2.0, tau_max=1.0)


def test_cli_search_with_darts_on_the_nb201_space(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nasforge.cli import app

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "darts.yaml"
    config.write_text(
        "space: {name: nb201, C: 2, N: 1}\n"
        "strategy: {name: darts, epochs: 2, fraction: 0.3, threads: 1}\n"
        "estimator: {name: train, epochs: 1, threads: 1}\n"
        "trials: 2\n"
        "final: {epochs: 1}\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["search", str(config)])
    assert result.exit_code == 0, result.output
    assert "supernet epochs" in result.output
    exp = Experiment.open(tmp_path / "runs" / "digits-darts", read_only=True)
    assert len(exp.trials) == 2
    saved = exp.storage.get_meta("strategy")
    assert saved["type"] == "DARTS" and len(saved["state"]["history"]) == 2

    wrong = runner.invoke(app, ["search", "--strategy", "darts", "--trials", "1"])
    assert wrong.exit_code == 2
    assert "nb201" in wrong.output and not (tmp_path / "runs" / "digits-darts-2").exists()


def test_guard_ops_widen_the_guard(digits):
    # the planted operation is skip_connect; a guard on pooling only never trips, one on skips does
    options = {"epochs": 4, "arch_lr": 0.05, "lr": 0.05, "max_skip": 2}
    pooling = _strategy(_planted(nf.strategy.DARTS), digits, guard_ops=["avg_pool_3x3"], **options)
    pooling.ask()
    assert pooling.guard is None and len(pooling.history) == 4
    skips = _strategy(_planted(nf.strategy.DARTS), digits, guard_ops=["skip_connect", "none"], **options)
    skips.ask()
    assert skips.guard is not None
    with pytest.raises(ConfigError, match="guard_ops"):
        nf.strategy.DARTS(guard_ops=["conv9x9"])
