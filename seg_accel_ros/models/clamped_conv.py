"""Convolutions whose ReLU / ReLU6 runs inside the convolution kernel (a oneDNN post-op).

An activation module after a convolution reads and writes the whole feature map once more:
on the CPU that pass is memory-bound and cost the default network 39 ms of a 405 ms dense
720p frame at one thread (``aten::clamp`` and ``aten::clamp_min_``). oneDNN applies the clamp
to each output tile while it is still in the cache. Inference networks get it through
:func:`fuse_activations`, which finds the pairs by running the network once, like BatchNorm
folding (:mod:`~seg_accel_ros.models.folding`), and keeps the fused copy only where it gives
the same output.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import handle_torch_function, has_torch_function_unary

from seg_accel_ros.models.folding import agrees, replace_submodule, run_with_hooks
from seg_accel_ros.models.pointwise import pointwise_conv2d


@dataclass(frozen=True)
class Clamp:
    """The activation a fused convolution applies: ``clamp(x, low, high)``; ``high`` None is
    ReLU (with ``low`` 0)."""

    low: float = 0.0
    high: float | None = None

    @classmethod
    def of(cls, activation: nn.Module) -> Clamp | None:
        """The clamp ``activation`` computes, or None for any other module."""
        if type(activation) is nn.ReLU:
            return cls()
        if type(activation) in (nn.ReLU6, nn.Hardtanh):
            return cls(float(activation.min_val), float(activation.max_val))
        return None

    def apply_(self, x: torch.Tensor) -> torch.Tensor:
        """In place on a freshly computed output."""
        return x.clamp_(min=self.low, max=self.high)

    def onednn_post_op(self) -> tuple[str, list[float]]:
        if self.high is None and self.low == 0.0:
            return "relu", []
        return "hardtanh", [self.low, float("inf") if self.high is None else self.high]


def _onednn_fused_conv() -> object | None:
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return None


_FUSED = _onednn_fused_conv()


def conv2d_clamped(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   stride: tuple[int, int], padding: tuple[int, int],
                   dilation: tuple[int, int], groups: int, clamp: Clamp) -> torch.Tensor:
    """``clamp(torch.conv2d(x, weight, bias, stride, padding, dilation, groups))``, in one
    oneDNN call on the CPU (float32, no gradients); tensor subclasses (the block engine's)
    dispatch it like a torch function."""
    if has_torch_function_unary(x):
        return handle_torch_function(conv2d_clamped, (x,), x, weight, bias, stride, padding,
                                     dilation, groups, clamp)
    if (_FUSED is not None and x.device.type == "cpu" and x.dtype == torch.float32
            and x.dim() == 4 and not torch.is_grad_enabled()
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        attr, scalars = clamp.onednn_post_op()
        return _FUSED(x, weight, bias, list(padding), list(stride), list(dilation), groups,
                      attr, scalars, "")
    if weight.shape[-2:] == (1, 1) and stride == (1, 1) and padding == (0, 0) and groups == 1:
        return clamp.apply_(pointwise_conv2d(x, weight, bias))
    return clamp.apply_(torch.conv2d(x, weight, bias, stride, padding, dilation, groups))


class ClampedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` followed by its activation (:class:`Clamp`), computed by
    :func:`conv2d_clamped`; it shares the original layer's parameters."""

    clamp: Clamp

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, clamp: Clamp) -> ClampedConv2d:
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                  conv.padding, conv.dilation, conv.groups, bias=conv.bias is not None,
                  device="meta")
        new.weight = conv.weight
        new.bias = conv.bias
        new.clamp = clamp
        new.train(conv.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d_clamped(x, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups, self.clamp)


def fusable(conv: nn.Module) -> bool:
    """Whether ``conv`` is a plain ``nn.Conv2d`` that :class:`ClampedConv2d` can replace."""
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


def conv_activation_pairs(module: nn.Module, example: torch.Tensor
                          ) -> list[tuple[str, str]]:
    """(conv name, activation name) where every call of the activation (ReLU, ReLU6,
    Hardtanh; it may be shared) takes the very tensor a convolution called once returned.
    BatchNorm folded into the convolution (an ``nn.Identity``) passes that tensor on."""
    names = {m: n for n, m in module.named_modules()}
    produced: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    calls: Counter[nn.Module] = Counter()
    found: list[tuple[nn.Module, nn.Module]] = []
    foreign: set[nn.Module] = set()  # activations also called on other tensors

    def after_conv(m: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
        calls[m] += 1
        produced[id(out)] = (m, out)  # the tensor is kept, so its id is not reused

    def before_activation(m: nn.Module, inputs: tuple) -> None:
        hit = produced.get(id(inputs[0]))
        if hit is not None and hit[1] is inputs[0]:
            found.append((hit[0], m))
        else:
            foreign.add(m)

    hooks = []
    for m in module.modules():
        if fusable(m):
            hooks.append(m.register_forward_hook(after_conv))
        elif Clamp.of(m) is not None:
            hooks.append(m.register_forward_pre_hook(before_activation))
    run_with_hooks(module, example, hooks)
    fed = Counter(c for c, _ in found)
    return [(names[c], names[a]) for c, a in found
            if a not in foreign and calls[c] == 1 and fed[c] == 1]


def fuse_activations(module: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of eval-mode ``module`` in which each convolution feeding an activation directly
    is a :class:`ClampedConv2d` and the activation an ``nn.Identity``, and the number of
    convolutions fused; ``module`` itself when nothing fuses or the copy disagrees."""
    if module.training:
        raise ValueError("activations are fused for inference only: call module.eval() first")
    pairs = conv_activation_pairs(module, example)
    if not pairs:
        return module, 0
    fused = copy.deepcopy(module)
    new: dict[nn.Module, nn.Module] = {}  # one replacement per layer, under all its names
    for conv_name, act_name in pairs:
        conv, act = fused.get_submodule(conv_name), fused.get_submodule(act_name)
        new[conv] = ClampedConv2d.from_conv(conv, Clamp.of(act))
        new[act] = nn.Identity()
    for name, m in list(fused.named_modules(remove_duplicate=False)):
        if m in new:
            replace_submodule(fused, name, new[m])
    return (fused, len(pairs)) if agrees(fused, module, example) else (module, 0)
