"""Weight sharing as an estimator (SPOS): trained once, saved, reused; inherited scores; the spos strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nasforge as nf
from nasforge.errors import CheckpointError, ConfigError
from nasforge.estimate import SupernetEstimator, TrialContext
from nasforge.estimate._loop import evaluate
from nasforge.estimate._supernet import SUPERNET_FILE
from nasforge.experiment import Experiment, TrialState
from nasforge.nn._supernet import recalibrate_bn
from nasforge.testing import toy_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"epochs": 2, "fraction": 0.3, "C": 2, "N": 1, "threads": 1, "calib_batches": 3}


@pytest.fixture(scope="module")
def digits():
    return nf.datasets.load("digits")


@pytest.fixture(scope="module")
def space():
    return nf.spaces.NB201Space(C=2, N=1)


def _arch(space, seed=0):
    return space.sample(np.random.default_rng(seed))


def test_trained_once_saved_and_reused(digits, space, tmp_path):
    est = SupernetEstimator(digits, **SMALL)
    arch = _arch(space)
    first = est.evaluate(arch, TrialContext(0, 0, run_dir=tmp_path))
    assert (tmp_path / SUPERNET_FILE).is_file() and est.train_seconds > 0
    assert len(est.history) == 2 and first["inherited"] == 1 and 0 <= first["val_accuracy"] <= 1
    assert first["params"] == sum(p.numel() for p in arch.build(digits.input_shape, 10).parameters())

    again = SupernetEstimator(digits, **SMALL)
    second = again.evaluate(arch, TrialContext(5, 123, run_dir=tmp_path))
    assert again.loaded_from == tmp_path / SUPERNET_FILE and again.train_seconds == 0
    assert again.history == est.history
    assert second["val_accuracy"] == first["val_accuracy"]  # same weights, same calibration batches


def test_other_settings_train_again(digits, space, tmp_path):
    SupernetEstimator(digits, **SMALL).prepare(space, tmp_path)
    other = SupernetEstimator(digits, **{**SMALL, "epochs": 1})
    other.prepare(space, tmp_path)
    assert other.loaded_from is None and len(other.history) == 1


def test_a_corrupt_supernet_file_is_a_clear_error(digits, space, tmp_path):
    (tmp_path / SUPERNET_FILE).write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match="delete it"):
        SupernetEstimator(digits, **SMALL).prepare(space, tmp_path)


def test_inherited_accuracy_is_the_extracted_network_with_recalibrated_bn(digits, space):
    est = SupernetEstimator(digits, **SMALL)
    arch = _arch(space, 3)
    score = est.evaluate(arch, TrialContext(0, 0))["val_accuracy"]
    cell = tuple(arch.params[f"edge{i}"] for i in range(6))
    standalone = est.net.extract(cell)
    order = torch.randperm(len(digits.x_train), generator=torch.Generator().manual_seed(est.seed))
    batches = [digits.x_train[order[i * 64 : (i + 1) * 64]] for i in range(SMALL["calib_batches"])]
    recalibrate_bn(standalone, batches)
    assert evaluate(standalone, digits.x_val, digits.y_val)[0] == pytest.approx(score, abs=1e-9)


@pytest.mark.parametrize("space_name", ["nb201", "chain_cnn"])
def test_finetuning_trains_a_copy_and_scores_higher(digits, space, space_name, tmp_path):
    if space_name == "chain_cnn":
        space = nf.spaces.ChainCNN(depth=(2, 3), layer={"filters": [8, 16]}).bind(digits.input_shape, 10)
    options = {**SMALL, "epochs": 1, "fraction": 0.2}
    est = SupernetEstimator(digits, **options)
    tuned = SupernetEstimator(digits, **options, finetune_steps=40)
    est.prepare(space, tmp_path)
    gains = []
    for seed in range(3):
        arch = _arch(space, seed)
        plain = est.evaluate(arch, TrialContext(0, 0, run_dir=tmp_path))
        first = tuned.evaluate(arch, TrialContext(0, 0, run_dir=tmp_path))  # loads the same supernet
        assert tuned.loaded_from == tmp_path / SUPERNET_FILE
        assert first["finetune_steps"] == 40 and plain["finetune_steps"] == 0
        before = {k: v.clone() for k, v in tuned.net.state_dict().items()}
        assert tuned.evaluate(arch, TrialContext(1, 1))["val_accuracy"] == first["val_accuracy"]  # repeatable
        assert all(torch.equal(before[k], v) for k, v in tuned.net.state_dict().items())  # a copy was trained
        gains.append(first["val_accuracy"] - plain["val_accuracy"])
    # 40 steps on digits lift a one-epoch supernet's scores (measured: +0.06 to +0.6)
    assert min(gains) > 0 and sum(gains) / len(gains) > 0.1, gains


@pytest.mark.parametrize("sampling, all_trained", [("fair", True), ("uniform", False)])
def test_fair_sampling_trains_every_operation_each_step(digits, space, sampling, all_trained):
    # one step (batch_size = all images of a tiny fraction, one epoch)
    est = SupernetEstimator(
        digits, epochs=1, fraction=0.05, batch_size=1000, C=2, N=1, threads=1, sampling=sampling, seed=1
    )
    before = est._build(est.settings(space)).state_dict()
    after = est.prepare(space).state_dict()
    convs = [k for k in before if ".candidates." in k and k.endswith("conv.weight")]
    changed = [not torch.equal(before[k], after[k]) for k in convs]
    assert all(changed) if all_trained else not all(changed)


def test_bad_options_are_clear_errors(digits):
    with pytest.raises(ConfigError, match="sampling"):
        SupernetEstimator(digits, sampling="greedy")
    with pytest.raises(ConfigError, match="finetune_steps"):
        SupernetEstimator(digits, finetune_steps=-1)
    with pytest.raises(ConfigError, match="finetune_lr"):
        SupernetEstimator(digits, finetune_lr="fast")
    with pytest.raises(ConfigError, match="nb201 and chain_cnn"):
        SupernetEstimator(digits, **SMALL).prepare(toy_space())


def test_any_strategy_searches_through_the_supernet_estimator(digits, space, tmp_path):
    exp = Experiment("shared", space=space, objectives=["val_accuracy"], run_dir=tmp_path, seed=0)
    options = {"population": 4, "tournament": 2}
    exp.run("evolution", SupernetEstimator(digits, **SMALL), n_trials=8, strategy_options=options)
    assert len(exp.trials) == 8 and all(t.metrics["inherited"] == 1 for t in exp.trials)
    assert (tmp_path / SUPERNET_FILE).is_file()


SPOS_OPTIONS = {"n_evaluations": 12, "supernet": SMALL, "inner_options": {"population": 4, "tournament": 2}}


class Count3x3(nf.Estimator):
    """Cheap stand-in for training from scratch (its task tells SPOS the dataset)."""

    def __init__(self, task):
        self.task = task

    def evaluate(self, arch, ctx):
        return {"score": float(list(arch.params.values()).count("nor_conv_3x3"))}


def test_spos_proposes_the_supernet_ranking_and_resumes_untrained(digits, space, tmp_path, monkeypatch):
    exp = Experiment("spos", space=space, objectives=["score"], run_dir=tmp_path / "a", seed=0)
    exp.run("spos", Count3x3(digits), n_trials=4, strategy_options=SPOS_OPTIONS)
    strategy = exp.strategy
    ranking = strategy.ranking
    assert len(ranking) == 12
    losses = [r["inherited_loss"] for r in ranking]  # rank_by="loss" is the default
    assert losses == sorted(losses)
    assert [dict(t.architecture.params) for t in exp.trials] == [r["params"] for r in ranking[:4]]
    assert (tmp_path / "a" / SUPERNET_FILE).is_file()

    def no_training(self, settings):
        raise AssertionError("a resumed spos run must not train the supernet again")

    monkeypatch.setattr(SupernetEstimator, "_train", no_training)
    resumed = Experiment("spos", space=space, objectives=["score"], run_dir=tmp_path / "a")
    resumed.run("spos", Count3x3(digits), n_trials=7, strategy_options=SPOS_OPTIONS)
    assert [dict(t.architecture.params) for t in resumed.trials] == [r["params"] for r in ranking[:7]]
    assert all(t.state is TrialState.COMPLETE for t in resumed.trials)


def test_spos_rank_by_accuracy_sorts_the_ranking_by_inherited_accuracy(digits, space, tmp_path):
    exp = Experiment("spos", space=space, objectives=["score"], run_dir=tmp_path, seed=0)
    exp.run("spos", Count3x3(digits), n_trials=2, strategy_options={**SPOS_OPTIONS, "rank_by": "accuracy"})
    ranking = exp.strategy.ranking
    accs = [r["inherited_accuracy"] for r in ranking]
    assert accs == sorted(accs, reverse=True)
    assert all(r["inherited_loss"] > 0 for r in ranking)
    assert exp.strategy.rank_by == "accuracy"


def test_spos_reuses_a_saved_supernet_for_a_new_search(digits, space, tmp_path, monkeypatch):
    first = Experiment("spos", space=space, objectives=["score"], run_dir=tmp_path, seed=0)
    first.run("spos", Count3x3(digits), n_trials=2, strategy_options=SPOS_OPTIONS)
    # a new strategy in the same run directory (its saved state cleared): the file is loaded
    first.storage.set_meta("strategy", None)
    monkeypatch.setattr(SupernetEstimator, "_train", lambda self, settings: pytest.fail("trained again"))
    strategy = nf.strategy.SPOS(seed=first.strategy.seed, **SPOS_OPTIONS)
    strategy.setup(space, nf.Objective(["score"]))
    strategy.set_run_dir(tmp_path)
    strategy.set_task(digits)
    assert strategy.ask() is not None
    assert strategy.estimator.loaded_from == tmp_path / SUPERNET_FILE


def test_spos_errors(space):
    with pytest.raises(ConfigError, match="inner"):
        nf.strategy.SPOS(inner="darts")
    with pytest.raises(ConfigError, match="rank_by must be 'loss' or 'accuracy'"):
        nf.strategy.SPOS(rank_by="acc")
    with pytest.raises(ConfigError, match="no option"):
        nf.strategy.SPOS(supernet={"epochz": 3})
    with pytest.raises(ConfigError, match="finetune_steps"):  # a bad value fails before any run starts
        nf.strategy.SPOS(supernet={"finetune_steps": -3})
    strategy = nf.strategy.SPOS(seed=0)
    strategy.setup(space, nf.Objective(["score"]))
    with pytest.raises(ConfigError, match="training estimator"):
        strategy.ask()


def test_cli_search_with_spos_keeps_the_supernet_in_the_run(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nasforge.cli import app

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "spos.yaml"
    config.write_text(
        "space: {name: nb201, C: 2, N: 1}\n"
        "strategy:\n"
        "  name: spos\n"
        "  n_evaluations: 10\n"
        "  inner_options: {population: 4, tournament: 2}\n"
        "  supernet: {epochs: 2, fraction: 0.3, threads: 1}\n"
        "estimator: {name: train, epochs: 1, threads: 1}\n"
        "trials: 2\n"
        "final: {epochs: 1}\n"
    )
    result = CliRunner().invoke(app, ["search", str(config)])
    assert result.exit_code == 0, result.output
    assert "supernet epochs" in result.output
    run = tmp_path / "runs" / "digits-spos"
    assert (run / SUPERNET_FILE).is_file() and (run / "model.nasforge").is_file()
    exp = Experiment.open(run, read_only=True)
    ranking = exp.storage.get_meta("strategy")["state"]["ranking"]
    assert [dict(t.architecture.params) for t in exp.trials] == [r["params"] for r in ranking[:2]]


def test_chain_space_supernet_scores_saves_and_reloads(digits, tmp_path):
    space = nf.spaces.ChainCNN(depth=(2, 3), layer={"filters": [8, 16]}).bind(digits.input_shape, 10)
    options = {"epochs": 2, "threads": 1, "calib_batches": 3}
    est = SupernetEstimator(digits, **options)
    arch = space.sample(np.random.default_rng(2))
    score = est.evaluate(arch, TrialContext(0, 0, run_dir=tmp_path))["val_accuracy"]
    standalone = est.net.extract(arch.params)
    order = torch.randperm(len(digits.x_train), generator=torch.Generator().manual_seed(est.seed))
    recalibrate_bn(standalone, [digits.x_train[order[i * 64 : (i + 1) * 64]] for i in range(3)])
    assert evaluate(standalone, digits.x_val, digits.y_val)[0] == pytest.approx(score, abs=1e-9)
    again = SupernetEstimator(digits, **options)
    assert again.evaluate(arch, TrialContext(1, 1, run_dir=tmp_path))["val_accuracy"] == score
    assert again.loaded_from == tmp_path / SUPERNET_FILE
    with pytest.raises(ConfigError, match="fair"):
        SupernetEstimator(digits, sampling="fair").prepare(space)


def test_cli_spos_on_the_default_chain_space(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nasforge.cli import app

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "spos.yaml"
    config.write_text("strategy: {name: spos, n_evaluations: 8, supernet: {epochs: 2, threads: 1}}\n")
    args = ["search", str(config), "--trials", "2", "--epochs", "2", "--final-epochs", "1", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "digits-spos" / SUPERNET_FILE).is_file()
