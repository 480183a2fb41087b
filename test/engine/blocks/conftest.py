"""Networks and helpers for the block-engine tests.

Two small networks written here exercise what the block engine must handle in real models:
``ResNetLike`` (7x7 stem, max pooling, residual blocks, strided 1x1 shortcuts, dilated
convolutions whose halo is wider than a LOW block, global context, PReLU / Hardswish, average
pooling, bilinear upsampling to the input size) and ``UNetLike`` (skip connections across
levels through concatenation, transposed-convolution / bilinear / nearest upsampling, depthwise
5x5 convolutions).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

torch.set_flush_denormal(True)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1,
            groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, dilation)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return F.relu(self.bn2(self.conv2(self.conv1(x))) + skip)


class GlobalContext(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        return x * w[:, :, None, None]


class ResNetLike(nn.Module):
    """Output stride 16; dilations 4 and 8 at stride 16 (LOW blocks are 4 px wide there)."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16),
                                  nn.PReLU(16))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.layer3 = BasicBlock(32, 48, stride=2)
        self.dilated = nn.Sequential(BasicBlock(48, 48, dilation=4), BasicBlock(48, 48, dilation=8))
        self.context = GlobalContext(48)
        self.smooth = nn.AvgPool2d(3, 1, 1)
        self.head = nn.Sequential(nn.Hardswish(), nn.Conv2d(48, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.layer3(self.layer2(self.layer1(self.pool(self.stem(x)))))
        f = self.smooth(self.context(self.dilated(f)))
        out = self.head(f)
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


class UNetLike(nn.Module):
    """Three poolings (input sizes must be multiples of 8), decoder with concatenated skips."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn(3, 8), conv_bn(8, 8))
        self.enc2 = nn.Sequential(conv_bn(8, 16), conv_bn(16, 16, 5, groups=16))
        self.enc3 = conv_bn(16, 32)
        self.bottom = nn.Sequential(conv_bn(32, 32, 5, groups=32), conv_bn(32, 32, 1))
        self.up3 = nn.ConvTranspose2d(32, 32, 2, stride=2)
        self.dec3 = conv_bn(64, 16)
        self.dec2 = conv_bn(32, 8)
        self.dec1 = conv_bn(16, 8)
        self.out = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        b = self.bottom(F.avg_pool2d(e3, 2))
        d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
        d2 = F.interpolate(d3, scale_factor=2, mode="bilinear", align_corners=False)
        d2 = self.dec2(torch.cat([d2, e2], dim=1))
        d1 = F.interpolate(d2, size=e1.shape[2:], mode="nearest")
        return self.out(self.dec1(torch.cat((d1, e1), 1)))


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, size: tuple[int, int] = (128, 192), steps: int = 2,
                        seed: int = 0) -> nn.Module:
    """Give BatchNorm layers the statistics of their inputs, as training would.

    Randomly initialised networks otherwise blow activations up by orders of magnitude (SwiftNet
    logits ~150), where float32 rounding alone exceeds the 1e-4 exactness budget.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for _ in range(steps):
        model(smooth_image(size, g))
    model.eval()
    return model


def smooth_image(size: tuple[int, int], generator: torch.Generator | None = None,
                 scale: float = 1.0) -> torch.Tensor:
    """A normalised-looking ``1 x 3 x H x W`` input: smooth regions, edges and some noise."""
    h, w = size
    coarse = torch.randn(1, 3, max(2, h // 24), max(2, w // 24), generator=generator)
    img = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    blocks = torch.randn(1, 3, max(1, h // 40), max(1, w // 40), generator=generator)
    img = img + F.interpolate(blocks, size=(h, w), mode="nearest")
    return scale * (img + 0.2 * torch.randn(1, 3, h, w, generator=generator))


NetFactory = Callable[[], nn.Module]


def _resnet() -> nn.Module:
    torch.manual_seed(1)
    return calibrate_batchnorm(ResNetLike())


def _unet() -> nn.Module:
    torch.manual_seed(2)
    return calibrate_batchnorm(UNetLike())


@torch.no_grad()
def calibrate_logits(model: nn.Module, classifier: nn.Conv2d, std: float = 2.0,
                     size: tuple[int, int] = (128, 192)) -> nn.Module:
    """Scale the last layer so that logits have the spread of a trained network.

    An untrained SwiftNet's logits reach +-30; float32 rounding of the dense network itself is
    then ~1e-4 (against float64), the whole exactness budget. Errors scale with the logits.
    """
    logits = model(smooth_image(size, torch.Generator().manual_seed(1)))
    scale = std / float(logits.std())
    classifier.weight.mul_(scale)
    if classifier.bias is not None:
        classifier.bias.mul_(scale)
    return model


def _registry(name: str) -> NetFactory:
    def build() -> nn.Module:
        from seg_accel_ros.models.registry import create_model

        torch.manual_seed(3)
        model = calibrate_batchnorm(create_model(name).module)
        head = getattr(model, "classifier", None)
        return calibrate_logits(model, head) if isinstance(head, nn.Conv2d) else model

    return build


TEST_NETS: dict[str, NetFactory] = {
    "resnet_like": _resnet,
    "unet_like": _unet,
    "swiftnet_lite0": _registry("swiftnet_lite0"),
    "cgnet": _registry("cgnet"),
    "espnet": _registry("espnet"),
}
GLOBAL_MODULES = {"swiftnet_lite0": ("spp",)}
_CACHE: dict[str, nn.Module] = {}


@pytest.fixture
def make_net() -> Callable[[str], nn.Module]:
    """Build (once per session) one of :data:`TEST_NETS` by name, in eval mode."""

    def get(name: str) -> nn.Module:
        if name not in _CACHE:
            _CACHE[name] = TEST_NETS[name]()
        return _CACHE[name]

    return get


@pytest.fixture
def global_modules() -> dict[str, tuple[str, ...]]:
    """The submodules each test network declares global (the registry's ``extra``)."""
    return GLOBAL_MODULES


@pytest.fixture
def make_image() -> Callable[..., torch.Tensor]:
    """:func:`smooth_image`."""
    return smooth_image
