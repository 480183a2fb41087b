"""Activations fused into their convolutions: the same values as the convolution followed by
the activation, found and fused only where the network computes exactly that."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.factory import inference_model
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.models.clamped_conv import (
    Clamp,
    ClampedConv2d,
    conv2d_clamped,
    conv_activation_pairs,
    fuse_activations,
)
from seg_accel_ros.models.folding import fold_batchnorm


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * (1.0 + float(b.abs().max())))


@pytest.mark.parametrize("clamp", [Clamp(), Clamp(0.0, 6.0), Clamp(-1.0, 1.0)])
@pytest.mark.parametrize(("kernel", "stride", "groups", "batch"),
                         [(1, 1, 1, 1), (1, 1, 1, 15), (3, 1, 1, 1), (3, 2, 16, 4), (5, 2, 16, 1)])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_clamped_convolution_is_the_convolution_then_the_clamp(clamp, kernel, stride, groups,
                                                                batch, layout):
    x = torch.randn(batch, 16, 11, 9).contiguous(memory_format=layout) * 4
    conv = nn.Conv2d(16, 16, kernel, stride, kernel // 2, groups=groups)
    p, s = (kernel // 2,) * 2, (stride,) * 2
    with torch.inference_mode():
        out = conv2d_clamped(x, conv.weight, conv.bias, s, p, (1, 1), groups, clamp)
        ref = torch.conv2d(x, conv.weight, conv.bias, s, p, 1, groups).clamp(clamp.low,
                                                                            clamp.high)
    _close(out, ref)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_the_clamp_runs_inside_the_convolution_kernel():
    x = torch.randn(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 1, 3, 3)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        conv2d_clamped(x, w, None, (1, 1), (1, 1), (1, 1), 8, Clamp(0.0, 6.0))
    ops = {e.key for e in prof.key_averages()}
    assert not any(op.startswith(("aten::clamp", "aten::hardtanh")) for op in ops), ops


def test_with_gradients_it_is_differentiable():
    conv = nn.Conv2d(8, 4, 3, padding=1)
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    conv2d_clamped(x, conv.weight, conv.bias, (1, 1), (1, 1), (1, 1), 1, Clamp()).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


class _Block(nn.Module):
    """An inverted-residual block: one activation module shared by two convolutions, a third
    convolution without one, BatchNorm between convolution and activation."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(8, 32, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(32)
        self.depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.project = nn.Conv2d(32, 8, 1)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn0(self.expand(x)))
        y = self.act(self.bn1(self.depthwise(y)))
        return x + self.project(y)


def _randomise_bn(net: nn.Module) -> nn.Module:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return net.eval()


def test_a_shared_activation_after_folded_batchnorm_is_fused_into_both_convolutions():
    net = _randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), _Block()))
    x = torch.randn(1, 3, 32, 40)
    with torch.inference_mode():
        ref = net(x)
    folded, _ = fold_batchnorm(net, x)
    fused, n = fuse_activations(folded, x)
    assert n == 3
    assert isinstance(fused[0], ClampedConv2d) and fused[0].clamp == Clamp()
    block = fused[2]
    assert isinstance(block.expand, ClampedConv2d) and isinstance(block.depthwise, ClampedConv2d)
    assert block.expand.clamp == Clamp(0.0, 6.0)
    assert type(block.project) is nn.Conv2d
    assert isinstance(block.act, nn.Identity) and isinstance(fused[1], nn.Identity)
    assert torch.equal(block.expand.weight, folded[2].expand.weight)
    assert isinstance(folded[2].act, nn.ReLU6)  # the network given is left as it is
    with torch.inference_mode():
        _close(fused(x), ref)


class _ActivationAlsoOnAnInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)) + self.act(x)


class _PreActivationAlsoUsed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y - self.act(y)


def test_an_activation_also_applied_to_other_tensors_is_left_alone():
    net = _ActivationAlsoOnAnInput().eval()
    assert conv_activation_pairs(net, torch.randn(1, 4, 8, 8)) == []
    assert fuse_activations(net, torch.randn(1, 4, 8, 8)) == (net, 0)


def test_a_convolution_whose_output_is_also_used_unactivated_is_left_alone():
    net = _PreActivationAlsoUsed().eval()
    x = torch.randn(1, 4, 8, 8)
    assert conv_activation_pairs(net, x) == [("conv", "act")]  # looks fusable from the hooks
    assert fuse_activations(net, x) == (net, 0)  # but the fused copy disagrees


def test_training_networks_are_refused():
    with pytest.raises(ValueError, match="inference only"):
        fuse_activations(nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU()), torch.randn(1, 3, 4, 4))


@pytest.fixture(scope="module")
def swiftnet():
    return inference_model("swiftnet_lite0")


def test_the_default_network_for_inference_has_no_activation_module_left(swiftnet):
    assert sum(isinstance(m, ClampedConv2d) for m in swiftnet.module.modules()) > 40
    assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in swiftnet.module.modules())


@pytest.mark.parametrize("fraction", [1.0, 0.3])
def test_the_block_engine_gives_the_same_output_with_and_without_fusion(swiftnet, fraction):
    """Fused and unfused networks: the same block outputs, all FULL (then also the dense
    output) or mixed FULL / LOW, so fusion changes the time of a frame, not its values."""
    import seg_accel_ros.engine.factory as factory

    original = factory.fuse_activations
    factory.fuse_activations = lambda module, example: (module, 0)
    try:
        unfused = inference_model("swiftnet_lite0")
    finally:
        factory.fuse_activations = original
    x = torch.randn(1, 3, 256, 320, generator=torch.Generator().manual_seed(3))
    outputs = []
    with torch.inference_mode():
        for model in (swiftnet, unfused):
            engine = BlockEngine(model, 128, dense_single_path=False)
            paths = engine.grid(256, 320).random(fraction, torch.Generator().manual_seed(1))
            outputs.append(engine.run(x, paths))
            assert sum(engine.model.last_fallbacks.values()) == 0
        _close(outputs[0], outputs[1])
        if fraction == 1.0:
            _close(outputs[0], swiftnet.module(x))
    assert (paths == BlockPath.FULL).any() and (fraction == 1.0 or (paths == BlockPath.LOW).any())
