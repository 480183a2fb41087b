"""Elementwise functions run on each path's batch as they are.

Activations, eval-mode BatchNorm, arithmetic between block tensors of one level, broadcasting
with per-channel vectors (``1 x C x 1 x 1``); dense operands of the level's size are split into
blocks first. Softmax / log-softmax over channels is per pixel, hence elementwise here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.ops.common import (
    NotLocal,
    bind,
    block_op,
    block_tensors,
    conform,
    is_inplace,
    tree_map,
)
from seg_accel_ros.engine.blocks.tensor import BlockTensor, register


def per_path(func: Callable, args: Any, kwargs: dict, path: int) -> Any:
    """``func`` with every block tensor replaced by its ``path`` batch."""
    def pick(v: Any) -> Any:
        return v.parts[path] if isinstance(v, BlockTensor) else v

    return func(*tree_map(args, pick), **tree_map(kwargs, pick))


def elementwise(func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``func`` per path; in-place functions update the block tensor they were given."""
    bts = block_tensors((args, kwargs))
    level = bts[0].level
    args, kwargs = conform(args, level), conform(kwargs, level)
    inplace = is_inplace(func, kwargs)
    if inplace and not (args and isinstance(args[0], BlockTensor)):
        raise NotLocal  # a dense tensor modified in place with block operands
    parts = {path: per_path(func, args, kwargs, path) for path in bts[0].parts}
    if inplace:
        target = args[0]
        target.parts = parts
        target.dense_cache = None
        return target
    if not all(isinstance(p, torch.Tensor) and p.dim() == 4 for p in parts.values()):
        raise NotLocal
    return BlockTensor(level, parts)


def _funcs(owner: Any, names: str) -> list[Callable]:
    return [getattr(owner, n) for n in names.split() if hasattr(owner, n)]


_UNARY_AND_BINARY = " ".join((
    "relu relu_ relu6 hardtanh hardtanh_ hardswish hardswish_ hardsigmoid hardsigmoid_",
    "silu silu_ gelu elu elu_ selu celu leaky_relu leaky_relu_ mish softplus sigmoid sigmoid_",
    "tanh tanh_ prelu add add_ sub sub_ mul mul_ div div_ true_divide clamp clamp_ clamp_min",
    "clamp_min_ clamp_max clamp_max_ neg exp abs sqrt rsqrt pow square sign maximum minimum",
    "where rsub dropout dropout2d alpha_dropout feature_alpha_dropout contiguous float half",
    "double to type_as clone detach __add__ __radd__ __iadd__ __sub__ __rsub__ __isub__",
    "__mul__ __rmul__ __imul__ __truediv__ __rtruediv__ __itruediv__ __neg__ __pow__",
))
ELEMENTWISE: list[Callable] = [
    *_funcs(F, _UNARY_AND_BINARY), *_funcs(torch, _UNARY_AND_BINARY),
    *_funcs(torch._C._nn, _UNARY_AND_BINARY), *_funcs(torch.Tensor, _UNARY_AND_BINARY),
]
register(*ELEMENTWISE)(block_op(elementwise))


@register(F.batch_norm, torch.batch_norm)
@block_op
def _batch_norm(func: Callable, args: tuple, kwargs: dict) -> Any:
    names = (("input", "running_mean", "running_var", "weight", "bias", "training")
             if func is F.batch_norm else
             ("input", "weight", "bias", "running_mean", "running_var", "training"))
    if bind(args, kwargs, names, {"training": False})["training"]:
        raise NotLocal  # batch statistics are global
    return elementwise(func, args, kwargs)


@register(F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, torch.Tensor.softmax,
          torch.Tensor.log_softmax)
@block_op
def _channel_softmax(func: Callable, args: tuple, kwargs: dict) -> Any:
    dim = bind(args, kwargs, ("input", "dim"), {"dim": None})["dim"]
    if dim not in (1, -3):
        raise NotLocal
    return elementwise(func, args, kwargs)


