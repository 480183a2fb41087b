"""Upsampling by integer factors: bilinear (a one-pixel halo, clamped at the image border like
``F.interpolate`` with ``align_corners=False``), nearest, and non-overlapping transposed
convolutions (``kernel == stride``: block-local)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.blockpad import edge_blocks, pad_blocks, pad_plan, pixel_table
from seg_accel_ros.engine.blocks.layout import FULL, LOW, Level
from seg_accel_ros.engine.blocks.ops.common import NotLocal, bind, block_op, pair
from seg_accel_ros.engine.blocks.ops.windowed import RING_MIN_BLOCK, gather_strip
from seg_accel_ros.engine.blocks.tensor import BlockTensor, completed, register


def integer_factor(level: Level, size: Any, scale_factor: Any) -> int:
    """The integer upsampling factor of an interpolate call, or raise :class:`NotLocal`."""
    h, w = level.logical
    if size is not None:
        sy, sx = pair(size)
        if sy % h or sx % w or sy // h != sx // w:
            raise NotLocal
        return sy // h
    if scale_factor is None:
        raise NotLocal
    fy, fx = (scale_factor, scale_factor) if isinstance(scale_factor, (int, float)) else (
        tuple(scale_factor) * 2 if len(scale_factor) == 1 else tuple(scale_factor))
    if fy != fx or float(fy) != int(fy) or int(fy) < 1:
        raise NotLocal
    return int(fy)


def upsample_path(x: BlockTensor, path: int, f: int, mode: str) -> torch.Tensor:
    """``path``'s blocks of ``x`` upsampled ``f`` times (bilinear reads a 1-pixel halo)."""
    if mode in ("nearest", "nearest-exact"):
        return F.interpolate(x.parts[path], scale_factor=f, mode=mode)
    b = x.level.block(path)
    if b >= RING_MIN_BLOCK // 2:
        return _upsample_ring(x, path, f)
    padded = pad_blocks(x, path, 1, 1, mode="replicate")
    up = F.interpolate(padded, scale_factor=f, mode="bilinear", align_corners=False)
    return up[:, :, f:f + b * f, f:f + b * f]


def _upsample_ring(x: BlockTensor, path: int, f: int) -> torch.Tensor:
    """Bilinear upsampling of bare blocks (clamping at their edges), then the ``f // 2``
    outermost output rows / columns, which read the neighbours, redone from 3-pixel strips."""
    level = x.level
    b = level.block(path)
    # Channels-last in and out: 2x faster than upsampling a channel-planar copy of logits.
    out = F.interpolate(x.parts[path], scale_factor=f, mode="bilinear", align_corners=False)
    tables = {p: pixel_table(t) for p, t in x.parts.items()}  # converted once for all strips
    r = f // 2
    if r == 0:
        return out
    full, n = (0, b + 2), b * f
    # (padded rows, padded cols) of each strip and the output rows / cols it redoes
    strips = (((0, 3), full, (0, r), (0, n)), ((b - 1, b + 2), full, (n - r, n), (0, n)),
              (full, (0, 3), (0, n), (0, r)), (full, (b - 1, b + 2), (0, n), (n - r, n)))
    for rows, cols, (y0, y1), (x0, x1) in strips:
        plan = pad_plan(level, path, 1, 1, "replicate", rows, cols)
        up = F.interpolate(gather_strip(x, path, plan, 0.0, tables), scale_factor=f,
                           mode="bilinear", align_corners=False)
        oy, ox = (rows[0] - 1) * f, (cols[0] - 1) * f  # strip output (k) <-> block (k + o)
        out[:, :, y0:y1, x0:x1] = up[:, :, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    _, edge = edge_blocks(level, path)
    if edge is not None:  # pixels past the valid extent inside the block: clamp to its edge
        plan = pad_plan(level, path, 1, 1, "replicate", edge_only=True)
        up = F.interpolate(gather_strip(x, path, plan, 0.0, tables), scale_factor=f,
                           mode="bilinear", align_corners=False)
        out.index_copy_(0, edge, up[:, :, f:f + n, f:f + n])
    return out


@register(F.interpolate)
@block_op
def _interpolate(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "size", "scale_factor", "mode", "align_corners",
                             "recompute_scale_factor", "antialias"),
              {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
               "recompute_scale_factor": None, "antialias": False})
    x, mode = a["input"], a["mode"]
    if not isinstance(x, BlockTensor) or x.dim() != 4 or a["antialias"]:
        raise NotLocal
    if mode not in ("nearest", "nearest-exact", "bilinear") or (
            mode == "bilinear" and a["align_corners"]):
        raise NotLocal
    level = x.level
    f = integer_factor(level, a["size"], a["scale_factor"])
    out_level = level.frame.level(level.bf * f, *(tuple(e * f for e in level.ext[p])
                                                  for p in (FULL, LOW)))
    if mode == "bilinear":
        x = completed(x)  # the 1-pixel halo may come from REUSE blocks
    return BlockTensor(out_level, {p: upsample_path(x, p, f, mode) for p in x.parts})




@register(torch.conv_transpose2d)
@block_op
def _conv_transpose2d(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "output_padding",
                             "groups", "dilation"),
              {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1,
               "dilation": 1})
    x, weight = a["input"], a["weight"]
    kernel = (int(weight.shape[-2]), int(weight.shape[-1]))
    stride = pair(a["stride"])
    if (not isinstance(x, BlockTensor) or kernel != stride or kernel[0] != kernel[1]
            or pair(a["padding"]) != (0, 0) or pair(a["output_padding"]) != (0, 0)
            or pair(a["dilation"]) != (1, 1)):
        raise NotLocal  # only the non-overlapping (block-local) form
    s = stride[0]
    level = x.level
    out_level = level.frame.level(level.bf * s, *(tuple(e * s for e in level.ext[p])
                                                  for p in (FULL, LOW)))
    parts = {p: torch.conv_transpose2d(t, weight, a["bias"], s, 0, 0, a["groups"], 1)
             for p, t in x.parts.items()}
    return BlockTensor(out_level, parts)


