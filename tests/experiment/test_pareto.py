"""Hypervolume against hand-computed values; a multi-objective search writes its Pareto front."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nasforge.errors import ConfigError
from nasforge.experiment import Experiment, hypervolume, write_pareto
from nasforge.testing import ToyEstimator, toy_space


def test_two_dimensional_staircase():
    # three boxes of 1x3, 2x2, 3x1 overlapping: 3 + 2 + 1 = 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [0, 0]) == 6.0
    assert hypervolume([[1, 3], [2, 2], [3, 1], [1, 1]], [0, 0]) == 6.0  # a dominated point adds nothing
    assert hypervolume([[1, 3]], [2, 0]) == 0.0  # not better than the reference in x
    assert hypervolume(np.empty((0, 2)), [0, 0]) == 0.0


def test_three_dimensions_match_a_grid_count():
    rng = np.random.default_rng(0)
    points = rng.integers(1, 6, size=(6, 3))
    # count unit cells of the 5x5x5 grid dominated by some point
    count = sum(
        any((p >= np.array(c) + 1).all() for p in points) for c in itertools.product(range(5), repeat=3)
    )
    assert hypervolume(points, [0, 0, 0]) == pytest.approx(count)


def test_hypervolume_rejects_nan():
    with pytest.raises(ConfigError, match="finite"):
        hypervolume([[np.nan, 1]], [0, 0])


class ScoreAndA(ToyEstimator):
    """The toy score, and the toy parameter ``a`` as a second metric (to minimise)."""

    def evaluate(self, arch, ctx):
        return {**super().evaluate(arch, ctx), "a": arch.params["a"]}


def test_pareto_files_of_a_two_objective_run(tmp_path):
    exp = Experiment("mo", space=toy_space(), objectives=["score", "-a"], seed=0)
    exp.run("random", ScoreAndA(), n_trials=30)
    path = write_pareto(exp, tmp_path)
    data = json.loads(path.read_text())
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert data["objectives"] == ["score", "-a"]
    front = {f["trial"] for f in data["front"]}
    assert front == {t.number for t in exp.pareto_front()}
    signed = [(t.values[0], -t.values[1]) for t in exp.trials if t.values is not None]
    ref = [min(s[0] for s in signed), min(s[1] for s in signed)]
    front_signed = [(t.values[0], -t.values[1]) for t in exp.pareto_front()]
    assert data["hypervolume"] == pytest.approx(hypervolume(front_signed, ref))
    # the default reference is reported in the objectives' own units, like a given one
    assert data["reference_signed"] == ref and data["reference"] == [ref[0], -ref[1]]
    # a fixed reference (in the objectives' own units) makes runs comparable
    fixed = json.loads(write_pareto(exp, tmp_path, reference=[0, 10]).read_text())
    assert fixed["reference"] == [0, 10] and fixed["reference_signed"] == [0, -10]
    with pytest.raises(ConfigError, match="two objectives"):
        write_pareto(Experiment("so", space=toy_space(), objectives=["score"]), tmp_path)


def test_a_multi_objective_search_leaves_its_front_in_the_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nasforge.cli import app

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "mo.yaml"
    config.write_text(
        "objectives: [val_accuracy, -params]\n"
        "strategy: {name: optuna, sampler: nsga2}\n"
        "estimator: {name: train, epochs: 1, threads: 1}\n"
        "trials: 4\n"
        "final: {epochs: 0}\n"
    )
    result = CliRunner().invoke(app, ["search", str(config), "-q"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "digits-optuna"
    data = json.loads((run / "pareto.json").read_text())
    assert data["objectives"] == ["val_accuracy", "-params"] and data["front"]
    assert (run / "pareto.png").is_file()
