"""The CPU kernel for 1x1 convolutions: oneDNN at every batch size and thread count.

With one thread, PyTorch runs a 1x1 convolution on a batch smaller than 16 with its im2col
kernel (``aten::_slow_conv2d_forward``), which also converts channels-last maps to NCHW and
back; with more threads, or 16 images and more, it uses oneDNN. On the default network at
1280x720 and one thread, oneDNN makes the dense frame about 7% faster, and a block batch got
it or not depending on how many blocks took its path. PyTorch sends dilated convolutions to
oneDNN, and a 1x1 kernel reads one pixel whatever its dilation: marking the 1x1 convolutions
dilated picks the faster kernel everywhere, with the same result.
"""

from __future__ import annotations

import torch
from torch import nn

POINTWISE_DILATION = (2, 2)


def onednn_available() -> bool:
    """Whether dilated convolutions run on oneDNN here (otherwise they take a slow kernel)."""
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled


def route_pointwise_to_onednn(module: nn.Module) -> int:
    """Mark every 1x1 ``Conv2d`` of an inference-only CPU ``module`` dilated, in place, so that
    PyTorch runs it with oneDNN; returns how many. Nothing changes where oneDNN is missing."""
    if not onednn_available():
        return 0
    count = 0
    for m in module.modules():
        if type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.padding_mode == "zeros":
            m.dilation = POINTWISE_DILATION
            count += 1
    return count
