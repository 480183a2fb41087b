"""Small building blocks shared by the light networks (CGNet, ESPNet).

Attribute names (``conv``, ``bn``, ``act``) follow the reference checkpoints' state-dict keys.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-3  # the batch-norm epsilon the reference checkpoints were trained with


class ConvBNPReLU(nn.Module):
    """Bias-free convolution with 'same' padding, batch norm, per-channel PReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class BNPReLU(nn.Module):
    """Batch norm and per-channel PReLU (e.g. on concatenated feature maps)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class Conv(nn.Module):
    """Bias-free convolution; padding ``dilation * (kernel // 2)`` keeps the size."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=dilation * (kernel // 2),
                              dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PooledInput(nn.Module):
    """The input image average-pooled ``times`` times by 2 (3x3, stride 2, padding 1): the
    "input injection" / "input projection" both networks concatenate into deeper stages."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(times))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pool in self.pool:
            x = pool(x)
        return x
