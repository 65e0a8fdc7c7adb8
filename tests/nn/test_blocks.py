"""The k1kx bottleneck and the re-parameterisable RepVGG / QARepVGG blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nasforge.hardware import count_params
from nasforge.nn._blocks import ConvBN, K1KXBlock, RepVGGBlock, reparameterize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.3)


@pytest.mark.parametrize("variant", ["repvgg", "qarep"])
@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride"),
    [(8, 8, 3, 1), (8, 16, 3, 1), (8, 8, 3, 2), (6, 6, 5, 1), (4, 12, 1, 1), (3, 8, 5, 2)],
)
def test_fused_block_equals_the_branches_in_eval_mode(
    variant: str, c_in: int, c_out: int, kernel: int, stride: int
) -> None:
    torch.manual_seed(0)
    block = RepVGGBlock(c_in, c_out, kernel, stride, act="relu", variant=variant)
    _randomise_bn(block)
    # A few training steps' worth of BN statistics updates too, so running stats are really used.
    block.train()
    block(torch.randn(4, c_in, 9, 9))
    block.eval()
    x = torch.randn(3, c_in, 9, 9)
    with torch.no_grad():
        before = block(x)
        fused = block.fuse()(x)
    assert block.fused is not None and block.dense is None and block.identity is None
    assert isinstance(block.fused, nn.Conv2d) and block.fused.kernel_size == (kernel, kernel)
    assert count_params(block) == c_out * c_in * kernel * kernel + c_out
    torch.testing.assert_close(fused, before, atol=1e-5, rtol=1e-5)
    assert block.fuse() is block and "fused" in repr(block)  # fusing again is a no-op


def test_branches_exist_as_designed() -> None:
    rep = RepVGGBlock(8, 8)
    assert (
        isinstance(rep.dense, ConvBN)
        and isinstance(rep.one, ConvBN)
        and isinstance(rep.identity, nn.BatchNorm2d)
    )
    assert rep.post_bn is None
    qa = RepVGGBlock(8, 8, variant="qarep")
    assert isinstance(qa.one, nn.Conv2d) and isinstance(qa.identity, nn.Identity)
    assert isinstance(qa.post_bn, nn.BatchNorm2d)
    assert RepVGGBlock(8, 16).identity is None and RepVGGBlock(8, 8, stride=2).identity is None
    with pytest.raises(ValueError, match="variant must be one of repvgg, qarep, got variant='rep'"):
        RepVGGBlock(8, 8, variant="rep")
    with pytest.raises(ValueError, match="kernel must be odd, got kernel=4"):
        RepVGGBlock(8, 8, kernel=4)


def test_k1kx_follows_damo_yolo_res_conv_block() -> None:
    block = K1KXBlock(16, 32, kernel=5, stride=1, bottleneck=8, act="relu")
    assert block.reduce.conv.kernel_size == (1, 1) and block.reduce.conv.out_channels == 8
    assert isinstance(block.conv, ConvBN) and block.conv.conv.kernel_size == (5, 5)
    assert isinstance(block.shortcut, ConvBN)  # width changes: 1x1 projection
    assert block(torch.randn(2, 16, 7, 7)).shape == (2, 32, 7, 7)
    assert isinstance(K1KXBlock(16, 16).shortcut, nn.Identity)
    strided = K1KXBlock(16, 16, stride=2)
    assert strided.shortcut is None and strided(torch.randn(1, 16, 8, 8)).shape == (1, 16, 4, 4)
    assert K1KXBlock(16, 32).reduce.conv.out_channels == 16  # default bottleneck: half the output

    # The identity shortcut: with the k x k branch's BN zeroed the block is act(x).
    same = K1KXBlock(8, 8, act="relu").eval()
    with torch.no_grad():
        assert isinstance(same.conv, ConvBN)
        same.conv.bn.weight.zero_()
        same.conv.bn.bias.zero_()
        x = torch.randn(2, 8, 5, 5)
        torch.testing.assert_close(same(x), torch.relu(x))
    with pytest.raises(ValueError, match="bottleneck must be an int >= 1"):
        K1KXBlock(8, 8, bottleneck=0)


def test_k1kx_with_a_rep_conv_fuses_to_the_same_function() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(
        K1KXBlock(3, 8, rep=True), K1KXBlock(8, 8, kernel=5, rep=True), RepVGGBlock(8, 4, variant="qarep")
    )
    _randomise_bn(net, seed=2)
    net.eval()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        before = net(x)
        assert reparameterize(net) is net
        after = net(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert all(m.fused is not None for m in net.modules() if isinstance(m, RepVGGBlock))


def test_blocks_train_and_build_on_meta() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        K1KXBlock(1, 8, stride=2, rep=True),
        RepVGGBlock(8, 8, variant="qarep"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 2, (16,))
    x[y == 1] += 1.0
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    meta = RepVGGBlock(4, 4, device="meta")
    assert meta.dense is not None and next(meta.parameters()).device.type == "meta"
