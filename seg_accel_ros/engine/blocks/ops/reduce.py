"""Global average pooling as a weighted sum over the blocks.

The mean covers the valid extent; with FULL blocks present, each LOW pixel counts 4 times (as
if nearest-upsampled into the full-resolution map); in a LOW-only frame the map is the
half-resolution one. Other global reductions run densely (``common.dense_fallback``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.gather import take_blocks
from seg_accel_ros.engine.blocks.layout import LOW, Level
from seg_accel_ros.engine.blocks.ops.common import NotLocal, bind, block_op, pair
from seg_accel_ros.engine.blocks.tensor import BlockTensor, completed, register, with_reused


def _valid_mask_plan(level: Level, path: int) -> tuple[torch.Tensor | None, torch.Tensor | None,
                                                       int]:
    """Blocks reaching past the valid extent, their validity masks, and the valid pixel count."""
    key = ("valid", path)
    plan = level.cache.get(key)
    if plan is None:
        frame = level.frame
        b = level.block(path)
        hv, wv = level.ext[path]
        gy, gx = frame.block_coords(path)
        rows_valid = (hv - gy * b).clamp(0, b)
        cols_valid = (wv - gx * b).clamp(0, b)
        edge = ((rows_valid < b) | (cols_valid < b)).nonzero().flatten()
        count = int((rows_valid * cols_valid).sum())
        if edge.numel():
            ar = torch.arange(b, device=frame.device)
            mask = ((ar[None, :, None] < rows_valid[edge, None, None])
                    & (ar[None, None, :] < cols_valid[edge, None, None]))
            plan = (edge, mask[:, None], count)
        else:
            plan = (None, None, count)
        level.cache[key] = plan
    return plan


def global_mean(x: BlockTensor) -> torch.Tensor:
    """``1 x C x 1 x 1`` mean over the valid map (LOW pixels weigh 4 beside FULL blocks)."""
    x = completed(x)
    level = x.level
    total: torch.Tensor | None = None
    count = 0
    for path, part in with_reused(x).items():
        weight = 4 if (path == LOW and level.frame.has_full) else 1
        edge, mask, n = _valid_mask_plan(level, path)
        s = part.sum(dim=(0, 2, 3))
        if edge is not None:
            e = take_blocks(part, edge)
            s = s - e.sum(dim=(0, 2, 3)) + (e * mask.to(e.dtype)).sum(dim=(0, 2, 3))
        s = s * weight
        total = s if total is None else total + s
        count += weight * n
    return (total / count).view(1, -1, 1, 1)


@register(F.adaptive_avg_pool2d)
@block_op
def _adaptive_avg_pool2d(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "output_size"), {})
    if not isinstance(a["input"], BlockTensor) or pair(a["output_size"]) != (1, 1):
        raise NotLocal
    return global_mean(a["input"])


@register(torch.mean, torch.Tensor.mean)
@block_op
def _mean(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
    x, dim = a["input"], a["dim"]
    if not isinstance(x, BlockTensor) or dim is None or a.get("dtype") is not None:
        raise NotLocal
    dims = {d % 4 for d in ((dim,) if isinstance(dim, int) else dim)}
    if dims != {2, 3}:
        raise NotLocal
    m = global_mean(x)
    return m if a["keepdim"] else m.view(1, -1)


