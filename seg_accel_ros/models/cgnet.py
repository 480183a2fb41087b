"""CGNet (Wu et al., "CGNet: A Light-weight Context Guided Network for Semantic Segmentation").

A re-implementation written from the paper and from the state-dict key listing of the public
CamVid checkpoint (M=3, N=21, 11 classes), so that that checkpoint loads with ``strict=True``.
Attribute names follow the checkpoint's keys.

Structure (C = 32 base channels):

- stage 1, 1/2 resolution: three 3x3 Conv-BN-PReLU layers (the first with stride 2), then the
  input image, average-pooled to 1/2, is concatenated ("input injection") -> 35 channels;
- stage 2, 1/4 resolution: one down-sampling CG block (-> 2C = 64) and M-1 = 2 CG blocks; the
  output of the first block, of the last block and the image at 1/4 are concatenated -> 131;
- stage 3, 1/8 resolution: one down-sampling CG block (-> 4C = 128) and N-1 = 20 CG blocks; the
  first and the last block's outputs are concatenated -> 256;
- a 1x1 classifier, and bilinear upsampling of the 1/8 logits to the input size.

A CG block computes a local feature (3x3 depthwise convolution) and a surrounding-context
feature (3x3 depthwise dilated convolution), concatenates them (joint feature), and reweights
the channels of the joint feature with a global context vector (global average pooling and two
fully connected layers, as in squeeze-and-excitation). Regular blocks add their input back
(global residual learning); down-sampling blocks have no residual.

Any input size works: every stride-2 layer (3x3, padding 1) and the input-injection pooling
(3x3 average, stride 2, padding 1) produce ``ceil(size / 2)``, so the concatenated maps always
agree, and the logits are interpolated back to exactly the input size. CamVid frames therefore
run at their native 480x360 (no crop, no resize): that reproduces the reference 65.5 mIoU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.models.layers import BN_EPS, BNPReLU, Conv, ConvBNPReLU, PooledInput
from seg_accel_ros.models.preprocessing import Preprocessing
from seg_accel_ros.models.registry import ModelSpec, register_model


class DepthwiseConv(nn.Module):
    """Channel-wise 3x3 convolution with dilation ``dilation`` (padding keeps the size)."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation,
                              groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class GlobalContext(nn.Module):
    """f_glo: channel weights in (0, 1) from the globally averaged feature, times the feature.

    The pooling covers the whole feature map: a block-sparse engine must run it densely.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        weights = self.fc(self.pool(x).view(n, c)).view(n, c, 1, 1)
        return x * weights


class ContextGuidedBlock(nn.Module):
    """CG block at constant resolution with global residual learning (``in_ch == out_ch``).

    1x1 Conv-BN-PReLU to ``out_ch / 2``; local and dilated surrounding depthwise features,
    concatenated to ``out_ch``; BN-PReLU; global-context reweighting; plus the input.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int, reduction: int) -> None:
        super().__init__()
        if in_ch != out_ch:
            raise ValueError("a residual CG block needs in_ch == out_ch")
        half = out_ch // 2
        self.conv1x1 = ConvBNPReLU(in_ch, half, 1)
        self.F_loc = DepthwiseConv(half)
        self.F_sur = DepthwiseConv(half, dilation)
        self.bn_prelu = BNPReLU(out_ch)
        self.F_glo = GlobalContext(out_ch, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x)
        joint = self.bn_prelu(torch.cat([self.F_loc(y), self.F_sur(y)], 1))
        return x + self.F_glo(joint)


class ContextGuidedDownBlock(nn.Module):
    """Down-sampling CG block: 3x3 stride-2 Conv-BN-PReLU to ``out_ch``, local and surrounding
    features (``2 * out_ch``), BN-PReLU, 1x1 reduction to ``out_ch``, global context; no residual.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int, reduction: int) -> None:
        super().__init__()
        self.conv1x1 = ConvBNPReLU(in_ch, out_ch, 3, stride=2)  # named so in the checkpoint
        self.F_loc = DepthwiseConv(out_ch)
        self.F_sur = DepthwiseConv(out_ch, dilation)
        self.bn = nn.BatchNorm2d(2 * out_ch, eps=BN_EPS)
        self.act = nn.PReLU(2 * out_ch)
        self.reduce = Conv(2 * out_ch, out_ch, 1)
        self.F_glo = GlobalContext(out_ch, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x)
        joint = self.act(self.bn(torch.cat([self.F_loc(y), self.F_sur(y)], 1)))
        return self.F_glo(self.reduce(joint))


class CGNet(nn.Module):
    """CGNet-M{m}-N{n}: 1/8-resolution logits, bilinearly upsampled to the input size."""

    def __init__(self, num_classes: int = 11, m: int = 3, n: int = 21, base: int = 32) -> None:
        super().__init__()
        if m < 1 or n < 1:
            raise ValueError("m and n must be >= 1")
        c1, c2, c3 = base, 2 * base, 4 * base
        self.level1_0 = ConvBNPReLU(3, c1, 3, stride=2)
        self.level1_1 = ConvBNPReLU(c1, c1, 3)
        self.level1_2 = ConvBNPReLU(c1, c1, 3)
        self.sample1 = PooledInput(1)
        self.sample2 = PooledInput(2)
        self.b1 = BNPReLU(c1 + 3)

        self.level2_0 = ContextGuidedDownBlock(c1 + 3, c2, dilation=2, reduction=8)
        self.level2 = nn.ModuleList(
            ContextGuidedBlock(c2, c2, dilation=2, reduction=8) for _ in range(m - 1))
        self.bn_prelu_2 = BNPReLU(2 * c2 + 3)

        self.level3_0 = ContextGuidedDownBlock(2 * c2 + 3, c3, dilation=4, reduction=16)
        self.level3 = nn.ModuleList(
            ContextGuidedBlock(c3, c3, dilation=4, reduction=16) for _ in range(n - 1))
        self.bn_prelu_3 = BNPReLU(2 * c3)

        self.classifier = nn.Sequential(Conv(2 * c3, num_classes, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 256-channel stage-3 feature map at 1/8 resolution (before the classifier)."""
        out = self.level1_2(self.level1_1(self.level1_0(x)))
        stage1 = self.b1(torch.cat([out, self.sample1(x)], 1))

        first = self.level2_0(stage1)
        out = first
        for block in self.level2:
            out = block(out)
        stage2 = self.bn_prelu_2(torch.cat([out, first, self.sample2(x)], 1))

        first = self.level3_0(stage2)
        out = first
        for block in self.level3:
            out = block(out)
        return self.bn_prelu_3(torch.cat([first, out], 1))

    def coarse_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at stride 8, before the final resize (see :class:`ModelSpec`)."""
        return self.classifier(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.coarse_logits(x)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


CGNET_PREPROCESSING = Preprocessing(
    channel_order="rgb",
    # This mean is the dataset's BGR mean, but the original training subtracted it from RGB
    # channels as given; the weights expect exactly that.
    mean=(105.658, 103.330, 99.625),
)

register_model(ModelSpec(
    name="cgnet",
    build=lambda: CGNet(num_classes=11, m=3, n=21),
    preprocessing=CGNET_PREPROCESSING,
    default_weights=None,  # pass the CamVid checkpoint path (kept outside the repository)
    output_stride=8,
    description="CGNet M3N21 (Wu et al.), 11 CamVid classes; logits upsampled to input size",
))
