"""Concatenation and slicing along channels; spatial crops ``x[..., :h, :w]``, which only
shrink the valid extent of the level."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seg_accel_ros.engine.blocks.layout import FULL, LOW, Level
from seg_accel_ros.engine.blocks.ops.common import NotLocal, bind, block_op, block_tensors, conform
from seg_accel_ros.engine.blocks.tensor import BlockTensor, register


@register(torch.cat, torch.concat, torch.concatenate)
@block_op
def _cat(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("tensors", "dim"), {"dim": 0})
    tensors, dim = list(a["tensors"]), a["dim"]
    if dim not in (1, -3):
        raise NotLocal
    bts = block_tensors(tensors)
    level = bts[0].level
    tensors = conform(tensors, level)
    if not all(isinstance(t, BlockTensor) for t in tensors):
        raise NotLocal
    parts = {p: torch.cat([t.parts[p] for t in tensors], 1) for p in bts[0].parts}
    return BlockTensor(level, parts)


def _crop_level(level: Level, hw: tuple[int, int]) -> Level:
    """The level after cropping its logical map to ``hw`` (top-left anchored)."""
    if level.frame.has_full:
        full = tuple(min(e, c) for e, c in zip(level.ext[FULL], hw, strict=True))
        low = tuple(min(e, -(-c // 2)) for e, c in zip(level.ext[LOW], hw, strict=True))
    else:
        low = tuple(min(e, c) for e, c in zip(level.ext[LOW], hw, strict=True))
        full = tuple(min(e, 2 * c) for e, c in zip(level.ext[FULL], hw, strict=True))
    return level.frame.level(level.bf, full, low)


@register(torch.Tensor.__getitem__)
@block_op
def _getitem(func: Callable, args: tuple, kwargs: dict) -> Any:
    x, index = args
    if not isinstance(x, BlockTensor) or kwargs:
        raise NotLocal
    index = index if isinstance(index, tuple) else (index,)
    if any(i is Ellipsis for i in index):
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (5 - len(index)) + index[at + 1:]
    index = tuple(index) + (slice(None),) * (4 - len(index))
    if len(index) != 4 or not all(isinstance(i, slice) for i in index):
        raise NotLocal
    batch, channels, rows, cols = index
    if batch != slice(None) and batch not in (slice(0, None), slice(0, 1), slice(None, 1)):
        raise NotLocal
    hw = []
    for sl, e in zip((rows, cols), x.level.logical, strict=True):
        start, stop, step = sl.indices(e)
        if start != 0 or step != 1:
            raise NotLocal
        hw.append(stop)
    level = x.level if tuple(hw) == x.level.logical else _crop_level(x.level, tuple(hw))
    parts = x.parts if channels == slice(None) else {
        p: t[:, channels] for p, t in x.parts.items()}
    return BlockTensor(level, dict(parts))


