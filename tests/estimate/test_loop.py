"""Tests of the training loop on scikit-learn digits (8×8) with a tiny conv net."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor, nn

from nasforge._threads import torch_threads
from nasforge.errors import ConfigError, DataError, TrialFailed
from nasforge.estimate._loop import FitResult, evaluate, fit

HISTORY_KEYS = {"epoch", "train_loss", "val_accuracy", "val_loss", "seconds"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Tiny models: one thread is as fast as two and does not collapse when other jobs share the cores.
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def tiny_cnn(seed: int = 0) -> nn.Module:
    """A 3-layer conv net for 1×8×8 inputs, initialised from ``seed`` without global seeding."""
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * math.sqrt(2.0 / p[0].numel()))
    return model


class NanModel(nn.Module):
    """A model whose logits are nan from the third forward call on."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out = self.linear(x.flatten(1))
        return out * math.nan if self.calls >= 3 else out


def test_fit_learns_digits_well_above_chance(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    model = tiny_cnn()
    result = fit(model, x_tr, y_tr, x_val=x_va, y_val=y_va, epochs=6, batch_size=64, lr=1e-2)

    assert isinstance(result, FitResult)
    assert result.val_accuracy > 0.8  # chance is 0.1
    assert result.epochs == 6 and len(result.history) == 6
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert all(set(h) == HISTORY_KEYS for h in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.train_loss == result.history[-1]["train_loss"]
    assert result.val_accuracy == result.history[-1]["val_accuracy"]
    assert 0 < result.val_loss < math.log(10)
    assert result.seconds == pytest.approx(sum(h["seconds"] for h in result.history))
    assert result.images_per_second == pytest.approx(6 * len(y_tr) / result.seconds)
    # The last evaluation is the model as returned.
    assert evaluate(model, x_va, y_va) == pytest.approx((result.val_accuracy, result.val_loss))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_every_optimizer_and_schedule_trains(
    digits: tuple[Tensor, ...], optimizer: str, schedule: str
) -> None:
    x_tr, y_tr, x_va, y_va = digits
    lr = 0.05 if optimizer == "sgd" else 5e-3
    result = fit(
        tiny_cnn(),
        x_tr,
        y_tr,
        x_val=x_va,
        y_val=y_va,
        epochs=2,
        batch_size=64,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        weight_decay=1e-4,
        label_smoothing=0.1,
    )
    assert result.val_accuracy > 0.3


def test_same_seed_same_result_other_seed_other_result(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    x_tr, y_tr = x_tr[:512], y_tr[:512]
    init = tiny_cnn()

    def run(seed: int) -> FitResult:
        return fit(
            copy.deepcopy(init), x_tr, y_tr, x_val=x_va, y_val=y_va, epochs=2, batch_size=32, seed=seed
        )

    a, b, c = run(0), run(0), run(1)
    assert a.train_loss == b.train_loss
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert (a.val_accuracy, a.val_loss) == (b.val_accuracy, b.val_loss)
    assert c.train_loss != a.train_loss


def test_fit_does_not_touch_global_rng(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, _, _ = digits
    model = tiny_cnn()  # nn layers' default init draws from the global generator: build it first
    state = torch.get_rng_state()
    fit(model, x_tr[:256], y_tr[:256], epochs=1, batch_size=64)
    assert torch.equal(torch.get_rng_state(), state)


def test_on_epoch_called_once_per_epoch_with_metrics(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    calls: list[tuple[int, dict[str, float]]] = []
    result = fit(
        tiny_cnn(),
        x_tr[:256],
        y_tr[:256],
        x_val=x_va,
        y_val=y_va,
        epochs=3,
        batch_size=64,
        on_epoch=lambda epoch, metrics: calls.append((epoch, metrics)),
    )
    assert [epoch for epoch, _ in calls] == [1, 2, 3]
    for (epoch, metrics), recorded in zip(calls, result.history, strict=True):
        assert set(metrics) == HISTORY_KEYS
        assert metrics == recorded and metrics["epoch"] == epoch
        assert 0.0 <= metrics["val_accuracy"] <= 1.0


def test_exception_in_on_epoch_propagates_and_stops_training(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, _, _ = digits

    class Stop(Exception):
        pass

    seen: list[int] = []

    def stop_at_two(epoch: int, metrics: dict[str, float]) -> None:
        seen.append(epoch)
        if epoch == 2:
            raise Stop(f"pruned at {epoch}")

    with pytest.raises(Stop, match="pruned at 2"):
        fit(tiny_cnn(), x_tr[:256], y_tr[:256], epochs=5, batch_size=64, on_epoch=stop_at_two)
    assert seen == [1, 2]


def test_evaluate_every_epoch_false_evaluates_only_last_epoch(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    result = fit(
        tiny_cnn(),
        x_tr[:256],
        y_tr[:256],
        x_val=x_va,
        y_val=y_va,
        epochs=3,
        batch_size=64,
        evaluate_every_epoch=False,
    )
    for h in result.history[:-1]:
        assert math.isnan(h["val_accuracy"]) and math.isnan(h["val_loss"])
        assert not math.isnan(h["train_loss"])
    assert 0.0 <= result.history[-1]["val_accuracy"] <= 1.0
    assert result.val_accuracy == result.history[-1]["val_accuracy"]


def test_no_validation_data_gives_nan_val_metrics(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, _, _ = digits
    result = fit(tiny_cnn(), x_tr[:256], y_tr[:256], epochs=1, batch_size=64)
    assert math.isnan(result.val_accuracy) and math.isnan(result.val_loss)
    assert result.train_loss > 0


def test_model_left_in_eval_mode(digits: tuple[Tensor, ...]) -> None:
    # Documented choice: after fit the model is ready for inference, with or without val data.
    x_tr, y_tr, x_va, y_va = digits
    for x_val, y_val in ((None, None), (x_va, y_va)):
        model = tiny_cnn()
        fit(model, x_tr[:128], y_tr[:128], x_val=x_val, y_val=y_val, epochs=1, batch_size=64)
        assert not any(m.training for m in model.modules())


def test_lone_last_sample_is_skipped_so_batchnorm_trains(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, _, _ = digits
    # 65 = 64 + 1: a final batch of one sample would make BatchNorm1d raise in training mode.
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))
    result = fit(model, x_tr[:65], y_tr[:65], epochs=2, batch_size=64)
    assert result.images_per_second == pytest.approx(2 * 64 / result.seconds)


def test_nan_loss_raises_trial_failed() -> None:
    x, y = torch.randn(256, 1, 8, 8), torch.randint(0, 10, (256,))
    with pytest.raises(TrialFailed, match=r"loss became nan at epoch 1, step 3; lower the learning rate"):
        fit(NanModel(), x, y, epochs=2, batch_size=32)


def test_huge_learning_rate_raises_trial_failed(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, _, _ = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with pytest.raises(TrialFailed, match=r"loss became (nan|inf) at epoch \d+, step \d+"):
        fit(model, x_tr * 1e3, y_tr, epochs=3, batch_size=64, lr=1e12, optimizer="sgd", schedule="constant")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "rmsprop"}, r"unknown optimizer 'rmsprop'; valid optimizers: adam, adamw, sgd"),
        ({"schedule": "step"}, r"unknown schedule 'step'; valid schedules: cosine, constant"),
        ({"epochs": 0}, r"epochs must be an integer >= 1, got epochs=0"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got batch_size=0"),
        ({"lr": 0.0}, r"lr must be a finite number > 0, got lr=0.0"),
        ({"lr": -1e-3}, r"lr must be a finite number > 0"),
        ({"weight_decay": -1.0}, r"weight_decay must be >= 0"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
        ({"time_limit": 0}, r"time_limit must be a positive number of seconds or None, got time_limit=0"),
        ({"warmup": -1}, r"warmup must be a number of epochs in \[0, epochs / 2\] \(the warm-up takes"),
        ({"warmup": math.nan}, r"got warmup=nan with epochs=1"),
        ({"warmup": 3, "epochs": 4}, r"at most half the training.*got warmup=3 with epochs=4"),
        ({"warmup": "1"}, r"got warmup='1'"),
    ],
)
def test_bad_config_raises_config_error(digits: tuple[Tensor, ...], kwargs: dict, match: str) -> None:
    x_tr, y_tr, _, _ = digits
    with pytest.raises(ConfigError, match=match):
        fit(tiny_cnn(), x_tr[:64], y_tr[:64], **kwargs)


def test_mismatched_data_raises_data_error(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, _ = digits
    with pytest.raises(DataError, match="same number of samples"):
        fit(tiny_cnn(), x_tr[:64], y_tr[:63])
    with pytest.raises(DataError, match="together"):
        fit(tiny_cnn(), x_tr[:64], y_tr[:64], x_val=x_va)
    with pytest.raises(DataError, match="integer class labels"):
        fit(tiny_cnn(), x_tr[:64], y_tr[:64].float())
    with pytest.raises(DataError, match="empty"):
        fit(tiny_cnn(), x_tr[:0], y_tr[:0])


def test_evaluate_matches_manual_computation(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    model = tiny_cnn()
    fit(model, x_tr, y_tr, epochs=1, batch_size=64, lr=1e-2)
    model.train()  # evaluate must switch to eval mode itself
    accuracy, loss = evaluate(model, x_va, y_va, batch_size=100)  # 397 samples: a partial last batch

    model.eval()
    with torch.no_grad():
        logits = model(x_va)
    expected_accuracy = (logits.argmax(1) == y_va).sum().item() / len(y_va)
    expected_loss = F.cross_entropy(logits, y_va).item()
    assert accuracy == pytest.approx(expected_accuracy, abs=1e-12)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert not model.training
    assert evaluate(model, x_va[:0], y_va[:0]) == (pytest.approx(math.nan, nan_ok=True),) * 2


def test_torch_threads_sets_and_restores_thread_count() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before

    with pytest.raises(RuntimeError, match="boom"), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before

    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before

    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        torch_threads(0)


def test_shift_augmentation_moves_images_within_the_padding() -> None:
    from nasforge.estimate._loop import _augment

    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0  # a bright 2x2 square in the middle
    out = _augment(x, "shift", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # moved, not cut
    centres = [tuple(torch.nonzero(o[0]).float().mean(0).tolist()) for o in out]
    assert len(set(centres)) > 5  # images moved by different amounts
    assert all(abs(r - 3.5) <= 1 and abs(c - 3.5) <= 1 for r, c in centres)  # by at most 8 // 8 = 1
    flipped = _augment(torch.arange(8.0).repeat(32, 1, 8, 1), "shift+flip", torch.Generator().manual_seed(1))
    assert (flipped[:, 0, 4, 4] < flipped[:, 0, 4, 3]).any()  # some rows now run right to left


def test_augmentation_keeps_the_batch_order_and_still_learns(digits: tuple[Tensor, ...]) -> None:
    x, y, xv, yv = digits
    init = tiny_cnn()  # its biases come from the global generator: copy one initialisation
    plain = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=6, lr=0.01, seed=0)
    shifted = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=6, lr=0.01, seed=0, augment="shift")
    # a 1-pixel shift is a lot on 8x8 digits: slower to learn (0.74 vs 0.94 at 10 epochs), far above chance
    assert shifted.val_accuracy > 0.5 and plain.val_accuracy > 0.8
    assert shifted.val_accuracy != plain.val_accuracy
    again = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=6, lr=0.01, seed=0, augment="shift")
    assert again.val_accuracy == shifted.val_accuracy  # augmentation is seeded too


def test_early_stopping_stops_and_keeps_the_best_epoch(digits: tuple[Tensor, ...]) -> None:
    x, y, xv, yv = digits
    model = tiny_cnn()
    # a constant, far too high learning rate on few images: validation accuracy peaks, then wanders
    result = fit(
        model,
        x[:200],
        y[:200],
        x_val=xv,
        y_val=yv,
        epochs=40,
        lr=0.05,
        schedule="constant",
        patience=3,
        seed=0,
    )
    accs = [h["val_accuracy"] for h in result.history]
    assert result.epochs == len(accs) <= 40
    assert result.best_epoch == 1 + max(range(len(accs)), key=lambda i: (accs[i], -i))
    assert result.epochs - result.best_epoch == 3 or result.epochs == 40
    assert result.val_accuracy == max(accs)
    assert evaluate(model, xv, yv)[0] == pytest.approx(max(accs))  # the best weights are back
    with pytest.raises(DataError, match="validation data"):
        fit(tiny_cnn(), x, y, patience=2)
    with pytest.raises(ConfigError, match="augmentation"):
        fit(tiny_cnn(), x, y, augment="rotate")


def test_val_proba_is_the_kept_weights_validation_pass_without_running_it_again(
    digits: tuple[Tensor, ...],
) -> None:
    from nasforge.estimate._metrics import predict_proba

    x, y, xv, yv = digits
    common = {"x_val": xv, "y_val": yv, "lr": 0.05, "schedule": "constant", "seed": 0}
    # early stopping restores the best epoch: its probabilities, not the last epoch's
    model = tiny_cnn()
    stopped = fit(model, x[:200], y[:200], epochs=40, patience=3, val_proba=True, **common)
    assert stopped.best_epoch < stopped.epochs  # measured: the best of 14 epochs is the 11th
    assert stopped.val_proba is not None and stopped.val_proba.dtype.name == "float64"
    assert (stopped.val_proba == predict_proba(model, xv)).all()  # bit for bit
    assert (stopped.val_proba.argmax(1) == yv.numpy()).mean() == stopped.val_accuracy
    # validating only the last epoch, or every epoch: the last pass's
    for every in (False, True):
        model = tiny_cnn()
        last = fit(model, x, y, epochs=2, evaluate_every_epoch=every, val_proba=True, **common)
        assert last.val_proba is not None and (last.val_proba == predict_proba(model, xv)).all()
    assert fit(tiny_cnn(), x, y, epochs=1, **common).val_proba is None  # not asked for
    assert fit(tiny_cnn(), x, y, epochs=1, val_proba=True).val_proba is None  # no validation data


def test_a_time_limit_stops_training_within_an_epoch_and_says_so(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    seen: list[int] = []
    result = fit(
        tiny_cnn(),
        x_tr,
        y_tr,
        x_val=x_va,
        y_val=y_va,
        epochs=1000,
        batch_size=32,
        lr=0.01,
        evaluate_every_epoch=False,
        time_limit=0.3,
        on_epoch=lambda epoch, m: seen.append(epoch),
    )
    assert result.timed_out and 1 <= result.epochs < 1000 and seen[-1] == result.epochs
    assert result.seconds < 0.3 + 0.5  # stopped at the step that crossed the limit, not at an epoch's end
    assert math.isfinite(result.train_loss) and 0 <= result.val_accuracy <= 1  # the cut epoch is evaluated
    assert result.history[-1]["epoch"] == result.epochs

    whole = fit(tiny_cnn(), x_tr[:256], y_tr[:256], epochs=2, batch_size=32, time_limit=600)
    assert not whole.timed_out and whole.epochs == 2


def test_a_time_limit_keeps_room_for_the_evaluation_that_follows(digits: tuple[Tensor, ...]) -> None:
    x_tr, y_tr, x_va, y_va = digits
    common = {"x_val": x_va, "y_val": y_va, "epochs": 3, "batch_size": 32, "evaluate_every_epoch": False}
    # a time limit that the training alone would fit in, but not with a billion images to evaluate
    # after it: it stops after the first step (at least one runs) and says it was cut
    cut = fit(tiny_cnn(), x_tr, y_tr, time_limit=600, eval_after=10**9, **common)
    assert cut.timed_out and cut.epochs == 1 and cut.images_per_second > 0
    assert cut.history[-1]["epoch"] == 1 and 0 <= cut.val_accuracy <= 1
    start = tiny_cnn()
    whole = fit(copy.deepcopy(start), x_tr, y_tr, time_limit=600, eval_after=1000, **common)
    assert not whole.timed_out and whole.epochs == 3
    again = fit(copy.deepcopy(start), x_tr, y_tr, **common)  # a time limit not reached changes nothing
    assert again.train_loss == whole.train_loss and again.val_accuracy == whole.val_accuracy
    with pytest.raises(ConfigError, match="eval_after must be an integer >= 0"):
        fit(tiny_cnn(), x_tr, y_tr, eval_after=-1)


def _lr_per_step(fit_kwargs: dict, data: tuple[Tensor, ...]) -> list[float]:
    """The learning rate of every optimizer step of a ``fit``, read by a global step pre-hook."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    x, y, _, _ = data
    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"])
    )
    try:
        fit(tiny_cnn(), x[:320], y[:320], batch_size=32, lr=0.01, seed=0, **fit_kwargs)
    finally:
        handle.remove()
    return seen


def test_warmup_rises_linearly_to_lr_then_the_schedule_decays(digits: tuple[Tensor, ...]) -> None:
    # 320 images in batches of 32: 10 steps an epoch; 1.5 epochs of warm-up are 15 steps
    lrs = _lr_per_step({"epochs": 4, "warmup": 1.5}, digits)
    assert len(lrs) == 40
    assert lrs[:15] == pytest.approx([0.01 * (i + 1) / 15 for i in range(15)])  # from lr/15 up to lr
    assert lrs[0] < 0.001 and lrs[14] == pytest.approx(0.01)
    assert lrs[15] == pytest.approx(0.01)  # the cosine starts at lr ...
    assert all(a > b for a, b in itertools.pairwise(lrs[15:]))  # ... and only falls
    assert lrs[-1] == pytest.approx(0.5 * 0.01 * (1 + math.cos(math.pi * 24 / 25)))
    # a fraction of an epoch rounds up to whole steps; a constant schedule stays at lr after it
    const = _lr_per_step({"epochs": 2, "warmup": 0.25, "schedule": "constant"}, digits)
    assert const[:3] == pytest.approx([0.01 / 3, 0.02 / 3, 0.01]) and set(const[3:]) == {0.01}
    # without warm-up: the cosine from the first step, as before warm-up existed
    plain = _lr_per_step({"epochs": 4}, digits)
    assert plain == [0.5 * 0.01 * (1 + math.cos(math.pi * i / 40)) for i in range(40)]


# Recorded with fit as it was before warm-up existed (main at 5eb29a3), one torch thread: warmup=0
# must give these bit for bit (train_loss, val_accuracy, val_loss).
BEFORE_WARMUP = {
    "cosine": (1.5402488047736032, 0.7455919395465995, 1.5838380136177581),
    "constant": (1.1984632519313267, 0.7531486146095718, 1.2380064380559272),
}


def seeded_cnn() -> nn.Module:
    """:func:`tiny_cnn` with its biases seeded too (they come from torch's global generator)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return tiny_cnn(0)


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_no_warmup_trains_exactly_as_before(digits: tuple[Tensor, ...], schedule: str) -> None:
    x, y, xv, yv = digits
    for extra in ({}, {"warmup": 0}, {"warmup": 0.0}):
        r = fit(seeded_cnn(), x, y, x_val=xv, y_val=yv, epochs=3, lr=0.01, seed=1, schedule=schedule, **extra)
        assert (r.train_loss, r.val_accuracy, r.val_loss) == BEFORE_WARMUP[schedule]


def test_warmup_changes_training_and_is_seeded(digits: tuple[Tensor, ...]) -> None:
    x, y, xv, yv = digits
    init = tiny_cnn()
    warm = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=4, lr=0.01, seed=0, warmup=1)
    again = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=4, lr=0.01, seed=0, warmup=1)
    cold = fit(copy.deepcopy(init), x, y, x_val=xv, y_val=yv, epochs=4, lr=0.01, seed=0)
    assert warm.train_loss == again.train_loss and warm.train_loss != cold.train_loss
    assert warm.val_accuracy > 0.5  # still learns digits in 4 epochs (chance: 0.1)


def test_fit_warmup_shortens_a_warmup_to_half_the_training() -> None:
    from nasforge.estimate._loop import fit_warmup, warmup_problem

    assert fit_warmup(1.0, 8) == 1.0 and fit_warmup(1.0, 1) == 0.5 and fit_warmup(0.0, 1) == 0.0
    assert warmup_problem(fit_warmup(3.0, 5), 5) is None
