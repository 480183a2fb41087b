"""ESPNet (Mehta et al., "ESPNet: Efficient Spatial Pyramid of Dilated Convolutions").

A re-implementation written from the paper and from the state-dict key listing of the public
CamVid checkpoint (p=2, q=8, 12 classes where 11 is Unlabelled), so that it loads with
``strict=True``. Attribute names follow the checkpoint's keys.

Encoder (ESPNet-C), with input injection of the average-pooled image as in the paper:

- 1/2: 3x3 stride-2 Conv-BN-PReLU (16) + image at 1/2 -> 19 channels (BN-PReLU);
- 1/4: a down-sampling ESP module (-> 64) and p=2 ESP modules; the last and the first module's
  outputs and the image at 1/4 -> 131 channels;
- 1/8: a down-sampling ESP module (-> 128) and q=8 ESP modules; first and last -> 256;
- 1x1 classifier.

An ESP module reduces the channels (1x1, or 3x3 stride 2 when down-sampling) to ``d = N/K`` and
runs K=5 parallel 3x3 convolutions with dilation 1, 2, 4, 8, 16; the dilated outputs are summed
hierarchically (HFF: 2, 2+4, 2+4+8, 2+4+8+16) before concatenation, which removes gridding
artefacts. Regular modules add their input back.

Decoder: the 1/8 logits (batch-normed) are upsampled by a 2x2 stride-2 transposed convolution
and combined with a 1x1 projection of the 1/4 features by an ESP module; upsampled again, fused
with the 1/2 features by a 3x3 Conv-BN-PReLU, and upsampled to full resolution by a last
transposed convolution.

Input sizes not divisible by 8: the stride-2 layers produce ``ceil(size / 2)``; each 2x2
transposed convolution then gives one row/column too many where the size was odd, and that
trailing row/column is cropped so that the maps agree with the skip connection (each output
pixel of a 2x2 stride-2 transposed convolution depends on a single input pixel, so the crop
drops nothing the kept pixels depend on). The output always has the input size.

The CamVid checkpoint has 12 output channels; the 12th is the trained "Unlabelled" class and is
kept (label 11): see the registration below for how the evaluator scores it.
"""

from __future__ import annotations

import torch
from torch import nn

from seg_accel_ros.models.classes import CAMVID_CLASSES, CAMVID_PALETTE
from seg_accel_ros.models.layers import BN_EPS, BNPReLU, Conv, ConvBNPReLU, PooledInput
from seg_accel_ros.models.preprocessing import Preprocessing
from seg_accel_ros.models.registry import ModelSpec, register_model

DILATIONS = (1, 2, 4, 8, 16)


class _SpatialPyramid(nn.Module):
    """Shared part of the ESP modules: reduce, 5 dilated 3x3 branches, hierarchical fusion.

    ``out_ch`` is split as ``d = out_ch // 5`` per branch, the dilation-1 branch taking the
    remainder (``out_ch - 4 d``) so that the concatenation has exactly ``out_ch`` channels.
    """

    def __init__(self, in_ch: int, out_ch: int, reduce_kernel: int, reduce_stride: int) -> None:
        super().__init__()
        d = out_ch // 5
        if d < 1:
            raise ValueError("an ESP module needs out_ch >= 5")
        self.c1 = Conv(in_ch, d, reduce_kernel, reduce_stride)
        self.d1 = Conv(d, out_ch - 4 * d, 3, dilation=1)
        self.d2 = Conv(d, d, 3, dilation=2)
        self.d4 = Conv(d, d, 3, dilation=4)
        self.d8 = Conv(d, d, 3, dilation=8)
        self.d16 = Conv(d, d, 3, dilation=16)

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        """Reduced input through the five branches, summed hierarchically, concatenated."""
        r = self.c1(x)
        sum2 = self.d2(r)
        sum4 = sum2 + self.d4(r)
        sum8 = sum4 + self.d8(r)
        sum16 = sum8 + self.d16(r)
        return torch.cat([self.d1(r), sum2, sum4, sum8, sum16], 1)


class ESPDownBlock(_SpatialPyramid):
    """Strided ESP module: 3x3 stride-2 reduction, pyramid, BN, PReLU (no residual)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, reduce_kernel=3, reduce_stride=2)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pyramid(x)))


class ESPBlock(_SpatialPyramid):
    """ESP module at constant resolution: 1x1 reduction, pyramid, (+ input), BN-PReLU."""

    def __init__(self, in_ch: int, out_ch: int, residual: bool = True) -> None:
        super().__init__(in_ch, out_ch, reduce_kernel=1, reduce_stride=1)
        if residual and in_ch != out_ch:
            raise ValueError("a residual ESP module needs in_ch == out_ch")
        self.residual = residual
        self.bn = BNPReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pyramid(x)
        if self.residual:
            y = y + x
        return self.bn(y)


class ESPNetEncoder(nn.Module):
    """ESPNet-C with p modules at 1/4 and q modules at 1/8 resolution."""

    def __init__(self, num_classes: int, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.level1 = ConvBNPReLU(3, 16, 3, stride=2)
        self.sample1 = PooledInput(1)
        self.sample2 = PooledInput(2)
        self.b1 = BNPReLU(16 + 3)
        self.level2_0 = ESPDownBlock(16 + 3, 64)
        self.level2 = nn.ModuleList(ESPBlock(64, 64) for _ in range(p))
        self.b2 = BNPReLU(128 + 3)
        self.level3_0 = ESPDownBlock(128 + 3, 128)
        self.level3 = nn.ModuleList(ESPBlock(128, 128) for _ in range(q))
        self.b3 = BNPReLU(256)
        self.classifier = Conv(256, num_classes, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The concatenated feature maps at 1/2 (19 ch), 1/4 (131 ch) and 1/8 (256 ch)."""
        half = self.b1(torch.cat([self.level1(x), self.sample1(x)], 1))

        first = self.level2_0(half)
        out = first
        for block in self.level2:
            out = block(out)
        quarter = self.b2(torch.cat([out, first, self.sample2(x)], 1))

        first = self.level3_0(quarter)
        out = first
        for block in self.level3:
            out = block(out)
        eighth = self.b3(torch.cat([first, out], 1))
        return half, quarter, eighth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ESPNet-C logits at 1/8 resolution."""
        return self.classifier(self.features(x)[2])


def _crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Drop the trailing rows/columns of ``x`` beyond the spatial size of ``like``."""
    return x[:, :, : like.shape[2], : like.shape[3]]


class ESPNet(nn.Module):
    """ESPNet with its light decoder: full-resolution logits for ``num_classes`` classes."""

    def __init__(self, num_classes: int = 12, p: int = 2, q: int = 8) -> None:
        super().__init__()
        k = num_classes
        self.encoder = ESPNetEncoder(k, p, q)
        self.level3_C = Conv(128 + 3, k, 1)
        self.br = nn.BatchNorm2d(k, eps=BN_EPS)
        self.conv = ConvBNPReLU(19 + k, k, 3)
        self.up_l3 = nn.Sequential(nn.ConvTranspose2d(k, k, 2, stride=2, bias=False))
        self.combine_l2_l3 = nn.Sequential(BNPReLU(2 * k), ESPBlock(2 * k, k, residual=False))
        self.up_l2 = nn.Sequential(nn.ConvTranspose2d(k, k, 2, stride=2, bias=False),
                                   BNPReLU(k))
        self.classifier = nn.ConvTranspose2d(k, k, 2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half, quarter, eighth = self.encoder.features(x)
        coarse = self.up_l3(self.br(self.encoder.classifier(eighth)))
        quarter_logits = self.level3_C(quarter)
        fused = self.combine_l2_l3(torch.cat([quarter_logits, _crop_to(coarse, quarter)], 1))
        fused = _crop_to(self.up_l2(fused), half)
        out = self.classifier(self.conv(torch.cat([fused, half], 1)))
        return _crop_to(out, x)


ESPNET_PREPROCESSING = Preprocessing(
    channel_order="bgr",
    mean=(110.331, 108.409, 105.033),  # BGR
    std=(72.126, 72.691, 69.904),
    scale=1.0 / 255.0,
)

ESPNET_CLASSES = (*CAMVID_CLASSES, "Unlabelled")
ESPNET_PALETTE = (*CAMVID_PALETTE, (0, 0, 0))

register_model(ModelSpec(
    name="espnet",
    build=lambda: ESPNet(num_classes=12, p=2, q=8),
    preprocessing=ESPNET_PREPROCESSING,
    # The 12th output channel is a trained class, "Unlabelled" (11, as in the CamVid label
    # images): it takes part in the argmax, so the engine may output label 11 where the network
    # sees none of the 11 real classes. The evaluator scores the 11 real classes only and counts
    # a ground-truth pixel predicted Unlabelled as a miss for its class (a false positive for no
    # class). That is the authors' protocol: it gives their published class accuracy (68.30 on
    # CamVid test) and mIoU 57.17; dropping the channel before the argmax would give 57.26 and
    # 70.82 instead.
    class_names=ESPNET_CLASSES,
    palette=ESPNET_PALETTE,
    default_weights=None,  # pass the CamVid checkpoint path (kept outside the repository)
    output_stride=8,
    description="ESPNet p=2 q=8 (Mehta et al.), CamVid 11 classes + Unlabelled (label 11)",
    extra={"void_label": 11},
))
