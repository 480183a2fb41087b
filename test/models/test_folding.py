"""BatchNorm folding: the same outputs with fewer ops, and nothing folded that must not be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seg_accel_ros.models.folding import conv_bn_pairs, fold_batchnorm


def _trained_bn(channels: int, seed: int) -> nn.BatchNorm2d:
    """A BatchNorm with non-trivial statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels)
    bn.running_mean.copy_(torch.randn(channels, generator=g))
    bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(channels, generator=g))
        bn.bias.copy_(torch.randn(channels, generator=g))
    return bn


class ConvBN(nn.Module):
    def __init__(self, bias: bool = False, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=bias, groups=groups)
        self.bn = _trained_bn(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class PreNormUsedTwice(ConvBN):
    """The convolution's raw output is also added back: folding would change that use."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class SharedConv(ConvBN):
    """One convolution called twice: not a single pair."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = _trained_bn(8, 2)
        self.first = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.conv(self.first(x))))


X = torch.randn(2, 4, 16, 20, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
def test_conv_then_batchnorm_folds_to_the_same_outputs(bias: bool, groups: int):
    net = ConvBN(bias, groups).eval()
    folded, n = fold_batchnorm(net, X)
    assert n == 1
    assert isinstance(folded.bn, nn.Identity)
    assert isinstance(net.bn, nn.BatchNorm2d)  # the original is left alone
    torch.testing.assert_close(folded(X), net(X), rtol=0, atol=1e-5)


def test_a_convolution_output_used_twice_is_not_folded():
    net = PreNormUsedTwice().eval()
    assert conv_bn_pairs(net, X) == [("conv", "bn")]  # it looks like a pair ...
    folded, n = fold_batchnorm(net, X)
    assert (folded, n) == (net, 0)  # ... but the check against the original rejects it


def test_a_module_called_twice_is_not_paired():
    assert conv_bn_pairs(SharedConv().eval(), X) == []


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="inference only"):
        fold_batchnorm(ConvBN().train(), X)


def test_default_network_folds_every_batchnorm():
    from seg_accel_ros.engine.factory import inference_model
    from seg_accel_ros.models.registry import create_model

    plain = create_model("swiftnet_lite0").module
    model = inference_model("swiftnet_lite0")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.module.modules())
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = plain(x)
        torch.testing.assert_close(model.module(x), ref, rtol=0,
                                   atol=1e-4 * float(ref.abs().max()))
