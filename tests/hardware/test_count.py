"""Tests of the parameter and FLOP counters against hand-computed numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.errors import ConfigError
from nasforge.hardware import count_flops, count_params


def small_cnn(device: str | None = None) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, device=device),  # 3*8*9 + 8 = 224
        nn.BatchNorm2d(8, device=device),  # 8 + 8 = 16 (running stats are buffers)
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10, device=device),  # 8*10 + 10 = 90
    )


def test_count_params_by_hand() -> None:
    assert count_params(small_cnn()) == 224 + 16 + 90


def test_count_params_skips_frozen_and_counts_shared_once() -> None:
    model = small_cnn()
    model[0].requires_grad_(False)
    assert count_params(model) == 16 + 90
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, nn.ReLU(), shared)) == 20
    assert count_params(nn.ReLU()) == 0


def test_count_params_on_meta() -> None:
    assert count_params(small_cnn("meta")) == count_params(small_cnn())


def test_count_flops_conv2d_is_twice_the_macs() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    macs = (8 * 5 * 7) * (3 * 3 * 3)  # output elements x multiply-adds per output; bias not counted
    assert count_flops(conv, (3, 5, 7)) == 2 * macs
    assert count_flops(conv, (3, 5, 7), batch_size=4) == 4 * 2 * macs
    strided = nn.Conv2d(4, 6, 5, stride=2, groups=2, bias=False)
    assert count_flops(strided, (4, 11, 11)) == 2 * (6 * 4 * 4) * (2 * 5 * 5)


def test_count_flops_linear_is_twice_the_macs() -> None:
    assert count_flops(nn.Linear(20, 10), (20,)) == 2 * 20 * 10
    assert count_flops(nn.Linear(20, 10), (20,), batch_size=3) == 3 * 2 * 20 * 10


def test_count_flops_ignores_elementwise_ops() -> None:
    conv_and_head = 2 * (8 * 6 * 6) * (3 * 9) + 2 * 8 * 10
    assert count_flops(small_cnn(), (3, 6, 6)) == conv_and_head


def test_count_flops_restores_training_modes_and_keeps_state() -> None:
    model = small_cnn().train()
    model[1].eval()  # e.g. a frozen BatchNorm must stay in eval
    running_mean = model[1].running_mean.clone()
    count_flops(model, (3, 6, 6))
    assert model.training and model[0].training and model[5].training
    assert not model[1].training
    torch.testing.assert_close(model[1].running_mean, running_mean)  # ran in eval mode

    model.eval()
    count_flops(model, (3, 6, 6))
    assert not any(m.training for m in model.modules())


def test_count_flops_restores_mode_when_forward_fails() -> None:
    model = small_cnn().train()
    with pytest.raises(RuntimeError):
        count_flops(model, (4, 6, 6))  # wrong channel count
    assert all(m.training for m in model.modules())


def test_count_flops_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    count_flops(small_cnn(), (3, 6, 6))
    assert capsys.readouterr() == ("", "")


def test_count_flops_follows_the_model_dtype_and_meta_device() -> None:
    expected = count_flops(small_cnn(), (3, 6, 6))
    assert count_flops(small_cnn().double(), (3, 6, 6)) == expected
    assert count_flops(small_cnn("meta"), (3, 6, 6)) == expected


@pytest.mark.parametrize(("shape", "batch"), [((3, 0, 6), 1), ((3, 6.0, 6), 1), ((3, 6, 6), 0)])
def test_count_flops_rejects_bad_shapes(shape: tuple[int, ...], batch: int) -> None:
    with pytest.raises(ConfigError):
        count_flops(small_cnn(), shape, batch_size=batch)
