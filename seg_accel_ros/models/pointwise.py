"""1x1 convolutions through oneDNN where PyTorch would pick its slower fallback kernel.

With one thread and a batch below 16, PyTorch runs a 1x1 convolution on the CPU as a plain
matrix product (its comment: faster single-threaded). On AVX-512 machines whose BLAS takes a
narrower code path (the project's AMD Zen 5 host) oneDNN is 2.2-2.5x faster on these layers:
the default network's dense frame at 720p went from 382 to 281-299 ms of CPU time at one thread
(``seg_accel_bench --suite blocks --threads 1 --cpu-time``, README). With more threads or larger
batches PyTorch already uses oneDNN, and nothing changes.
"""

from __future__ import annotations

import torch
from torch import nn

from seg_accel_ros.models.folding import replace_submodule

# PyTorch uses oneDNN for unstrided 1x1 convolutions of batches this large at any thread count.
ONEDNN_MIN_BATCH = 16


def pointwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None) -> torch.Tensor:
    """``torch.conv2d(x, weight, bias)`` for a 1x1 kernel (stride 1, no padding, one group),
    through oneDNN where PyTorch would otherwise run its single-threaded fallback."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and x.shape[0] < ONEDNN_MIN_BATCH and torch.get_num_threads() == 1
            and not torch.is_grad_enabled() and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled):
        return torch.mkldnn_convolution(x, weight, bias, (0, 0), (1, 1), (1, 1), 1)
    return torch.conv2d(x, weight, bias)


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` (stride 1, no padding, one group) computed by
    :func:`pointwise_conv2d` on plain tensors; tensor subclasses (the block engine's) take
    the usual ``F.conv2d`` route."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PointwiseConv2d:
        """The same layer, sharing ``conv``'s parameters."""
        new = cls(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None,
                  device="meta")
        new.weight = conv.weight
        new.bias = conv.bias
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(x) is torch.Tensor:
            return pointwise_conv2d(x, self.weight, self.bias)
        return super().forward(x)


def is_pointwise(conv: nn.Module) -> bool:
    """Whether ``conv`` is a plain 1x1 convolution that :class:`PointwiseConv2d` can replace."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding in ((0, 0), "valid")
            and conv.padding_mode == "zeros")


def use_onednn_pointwise(module: nn.Module) -> int:
    """Replace, in place, every plain 1x1 ``nn.Conv2d`` of ``module`` by a
    :class:`PointwiseConv2d` sharing its parameters; returns how many were replaced. A layer
    registered under several names stays one layer."""
    replaced: dict[nn.Module, PointwiseConv2d] = {}
    targets = [(name, m) for name, m in module.named_modules(remove_duplicate=False)
               if is_pointwise(m)]
    for name, conv in targets:
        if conv not in replaced:
            replaced[conv] = PointwiseConv2d.from_conv(conv)
        replace_submodule(module, name, replaced[conv])
    return len(replaced)
