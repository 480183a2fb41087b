"""1x1 convolutions through oneDNN: the same values as ``torch.conv2d``, the same networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.models.pointwise import (
    PointwiseConv2d,
    is_pointwise,
    pointwise_conv2d,
    use_onednn_pointwise,
)
from seg_accel_ros.models.registry import create_model


@pytest.fixture
def one_thread():
    """One thread: where PyTorch would otherwise pick its fallback kernel."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * (1.0 + float(b.abs().max())))


@pytest.mark.parametrize("batch", [1, 15, 16])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_pointwise_convolution_is_the_convolution(batch, bias, layout, one_thread):
    x = torch.randn(batch, 24, 5, 7).contiguous(memory_format=layout)
    conv = nn.Conv2d(24, 40, 1, bias=bias)
    with torch.inference_mode():
        out = pointwise_conv2d(x, conv.weight, conv.bias)
        _close(out, torch.conv2d(x, conv.weight, conv.bias))
    assert out.is_contiguous(memory_format=layout)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_one_thread_small_batches_run_onednn_not_the_fallback(one_thread):
    x = torch.randn(1, 24, 8, 8).contiguous(memory_format=torch.channels_last)
    w = torch.randn(40, 24, 1, 1)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        pointwise_conv2d(x, w, None)
    ops = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in ops and "aten::_slow_conv2d_forward" not in ops


def test_with_gradients_it_is_differentiable(one_thread):
    conv = nn.Conv2d(8, 4, 1)
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    pointwise_conv2d(x, conv.weight, conv.bias).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.expand = nn.Conv2d(8, 16, 1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.strided = nn.Conv2d(16, 16, 1, stride=2)
        self.grouped = nn.Conv2d(16, 16, 1, groups=2)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(16, 5, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(self.expand(self.stem(x)))
        return self.head(self.grouped(y) + nn.functional.interpolate(self.strided(y), y.shape[-2:]))


def test_only_plain_one_by_one_convolutions_are_replaced_and_share_parameters(one_thread):
    net = _Mixed().eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.inference_mode():
        before = net(x)
    weight = net.expand.weight
    assert use_onednn_pointwise(net) == 2
    assert isinstance(net.expand, PointwiseConv2d) and isinstance(net.head[1], PointwiseConv2d)
    assert all(type(m) is nn.Conv2d for m in (net.stem, net.depthwise, net.strided, net.grouped))
    assert net.expand.weight is weight and net.head[1].bias is None
    assert not any(is_pointwise(m) for m in net.modules())
    with torch.inference_mode():
        _close(net(x), before)


def test_a_layer_used_twice_stays_one_layer():
    net = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())
    net.append(net[0])
    assert use_onednn_pointwise(net) == 1
    assert isinstance(net[0], PointwiseConv2d) and net[2] is net[0]


def test_the_block_engine_runs_a_converted_network_exactly(one_thread):
    model = create_model("swiftnet_lite0")
    net = model.module
    x = torch.randn(1, 3, 256, 384, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        reference = net(x)
        assert use_onednn_pointwise(net) > 0
        engine = BlockEngine(model, 128, dense_single_path=False)
        out = engine.run(x, engine.grid(256, 384).uniform(BlockPath.FULL))
    _close(out, reference)
