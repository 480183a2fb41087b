"""1x1 convolutions on oneDNN (``models/pointwise.py``): same outputs, no im2col kernel."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from seg_accel_ros.models.pointwise import onednn_available, route_pointwise_to_onednn

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 24, 1), nn.ReLU(),
        nn.Conv2d(24, 24, 1, stride=2, padding=1, bias=False),
        nn.Conv2d(24, 8, 1, padding="same"),
    ).eval()


def _x(batch: int = 1) -> torch.Tensor:
    x = torch.randn(batch, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    return x.contiguous(memory_format=torch.channels_last)


def test_only_1x1_convolutions_are_marked_and_outputs_are_unchanged():
    plain, routed = _net(), _net()
    assert route_pointwise_to_onednn(routed) == 3
    assert routed[0].dilation == (1, 1)
    assert all(routed[i].dilation == (2, 2) for i in (2, 4, 5))
    with torch.inference_mode():
        for batch in (1, 20):
            torch.testing.assert_close(routed(_x(batch)), plain(_x(batch)), rtol=1e-5,
                                       atol=1e-5)


def test_one_thread_batch_one_runs_no_im2col_kernel():
    net = _net()
    routed = copy.deepcopy(net)
    route_pointwise_to_onednn(routed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        kernels = {}
        for name, module in (("plain", net), ("routed", routed)):
            with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
                module(_x())
            kernels[name] = {e.name for e in prof.events()}
    finally:
        torch.set_num_threads(threads)
    assert "aten::_slow_conv2d_forward" in kernels["plain"]  # PyTorch's choice unrouted
    assert "aten::_slow_conv2d_forward" not in kernels["routed"]
    assert "aten::mkldnn_convolution" in kernels["routed"]


def test_inference_models_on_the_cpu_are_routed():
    from seg_accel_ros.engine.factory import inference_model

    model = inference_model("swiftnet_lite0")
    pointwise = [m for m in model.module.modules()
                 if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert pointwise and all(m.dilation == (2, 2) for m in pointwise)
