"""Upsampling: by integer factors (bilinear with a one-pixel halo, clamped at the image border
like ``F.interpolate`` with ``align_corners=False``; nearest), bilinear resizing to another
level's size (a skip connection's odd size: ``23 -> 45``), and non-overlapping transposed
convolutions (``kernel == stride``: block-local)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.blockpad import edge_blocks, pad_blocks, pad_plan, pixel_table
from seg_accel_ros.engine.blocks.layout import FULL, LOW, Level
from seg_accel_ros.engine.blocks.ops.common import NotLocal, bind, block_op, pair
from seg_accel_ros.engine.blocks.ops.windowed import RING_MIN_BLOCK, gather_strip
from seg_accel_ros.engine.blocks.tensor import BlockTensor, completed, register
from seg_accel_ros.engine.result import PixelReduction
from seg_accel_ros.engine.upsampled_labels import upsampled_labels


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


# Output pixels per chunk of :func:`upsampled_maps`: a chunk's logits (~3 MB for 11 classes)
# stay in the L2 / L3 cache between the upsampling and the reduction that reads them.
UPSAMPLE_CHUNK_PIXELS = 1 << 16


def upsampled_maps(x: BlockTensor, path: int, f: int,
                   reduce: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
                   ) -> Iterator[tuple[slice, tuple[torch.Tensor, ...]]]:
    """``reduce`` of ``path``'s blocks bilinearly upsampled ``f`` times, a few blocks at a
    time: (positions in the path's batch, their reduced maps).

    The same values as ``reduce(upsample_path(x, path, f, "bilinear"))``, but the ``f * f``
    times larger map never exists whole: written out and read back it cost the LOW blocks'
    output ~30% more at 720p (45 blocks of 11-class logits, 32 MB). Labels alone
    (a :class:`PixelReduction` without confidence) come from
    :func:`~seg_accel_ros.engine.upsampled_labels.upsampled_labels`.
    """
    b = x.level.block(path)
    padded = pad_blocks(x, path, 1, 1, mode="replicate", scratch=False)
    if isinstance(reduce, PixelReduction) and not reduce.confidence:
        yield slice(None), (upsampled_labels(reduce.classes_of(padded), f),)
        return
    k = max(1, UPSAMPLE_CHUNK_PIXELS // ((b + 2) * f) ** 2)
    for i in range(0, padded.shape[0], k):
        up = F.interpolate(padded[i:i + k], scale_factor=f, mode="bilinear",
                           align_corners=False)
        yield slice(i, i + k), reduce(up[:, :, f:f + b * f, f:f + b * f])


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
    try:
        f = integer_factor(level, a["size"], a["scale_factor"])
    except NotLocal:
        if mode != "bilinear" or a["size"] is None:
            raise
        return resize_bilinear(x, pair(a["size"]))
    out_level = level.frame.level(level.bf * f, *(tuple(e * f for e in level.ext[p])
                                                  for p in (FULL, LOW)))
    if mode == "bilinear":
        x = completed(x)  # the 1-pixel halo may come from REUSE blocks
    return BlockTensor(out_level, {p: upsample_path(x, p, f, mode) for p in x.parts})


# Widest halo a resize may read (in input pixels beyond its block); wider: run it densely.
RESIZE_MAX_HALO = 4


def resize_bilinear(x: BlockTensor, size: tuple[int, int]) -> BlockTensor:
    """``F.interpolate(x, size, mode="bilinear")`` where ``size`` is no integer multiple of
    ``x``'s size but another level's (a decoder upsampling to its skip connection's odd size).

    Each path resizes its own extents (LOW blocks from the LOW extent of ``x``'s level to that
    of the target level, as the network on the half-resolution image would): every output
    pixel blends the 2 x 2 input pixels PyTorch's formula picks, read from the block padded
    with the few pixels the non-integer ratio makes it reach beyond its own."""
    level = x.level
    out_level = level.frame.find_level(size)
    if out_level is None or out_level.bf % level.bf:
        raise NotLocal
    taps = {p: resize_taps(level, out_level, p) for p in x.parts}
    if any(t is None for t in taps.values()):
        raise NotLocal
    x = completed(x)  # the halo may come from REUSE blocks
    return BlockTensor(out_level, {p: _resize_path(x, p, t) for p, t in taps.items()})


def _axis_taps(cells: int, b_in: int, b_out: int, e_in: int, e_out: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Along one axis, per grid cell and output pixel: the two input pixels (relative to the
    cell's first input pixel) and the second one's weight, by ``F.interpolate``'s bilinear
    formula (``align_corners=False``, in float32 like its CPU kernel); and the halo needed."""
    scale = np.float32(e_in) / np.float32(e_out)
    dst = np.minimum(np.arange(cells * b_out), e_out - 1).astype(np.float32)
    src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), e_in - 1)
    i1 = np.minimum(i0 + 1, e_in - 1)
    w1 = (src - i0.astype(np.float32)).reshape(cells, b_out)
    start = (np.arange(cells) * b_in)[:, None]
    r0, r1 = i0.reshape(cells, b_out) - start, i1.reshape(cells, b_out) - start
    halo = max(0, int(-r0.min()), int(r1.max()) - (b_in - 1))
    return r0, r1, w1, halo


@dataclass(frozen=True)
class ResizeTaps:
    """Where each output pixel of one path's resized blocks reads: the halo of its padded
    input blocks, and for the four bilinear taps flat indices into their pixel table and
    weights (``4 x n*b*b`` and ``4 x n*b*b x 1``)."""

    hy: int
    hx: int
    block: int  # output block size
    index: torch.Tensor
    weight: torch.Tensor


def resize_taps(level: Level, out_level: Level, path: int) -> ResizeTaps | None:
    """The taps of ``path``'s blocks for :func:`resize_bilinear` (cached on the target level),
    or None if the halo is too wide."""
    key = ("resize", level.bf, level.ext[path], path)
    if key in out_level.cache:
        return out_level.cache[key]
    frame = level.frame
    b_in, b_out = level.block(path), out_level.block(path)
    rows, cols = frame.grid.shape
    (ry0, ry1, wy, hy), (rx0, rx1, wx, hx) = (
        _axis_taps(n, b_in, b_out, level.ext[path][a], out_level.ext[path][a])
        for a, n in ((0, rows), (1, cols)))
    taps = None
    if max(hy, hx) <= RESIZE_MAX_HALO:
        gy, gx = (c.numpy() for c in frame.block_coords_cpu(path))
        n, hp, wp = gy.size, b_in + 2 * hy, b_in + 2 * hx
        base = (np.arange(n) * hp)[:, None, None]
        index = [((base + (ry[gy] + hy)[:, :, None]) * wp + (rx[gx] + hx)[:, None, :]).ravel()
                 for ry in (ry0, ry1) for rx in (rx0, rx1)]  # taps 00, 01, 10, 11
        wy1, wx1 = wy[gy][:, :, None], wx[gx][:, None, :]
        weight = [(1 - wy1) * (1 - wx1), (1 - wy1) * wx1, wy1 * (1 - wx1), wy1 * wx1]
        taps = ResizeTaps(hy, hx, b_out, torch.from_numpy(np.stack(index)).to(frame.device),
                          torch.from_numpy(np.stack([w.reshape(-1, 1) for w in weight])
                                           .astype(np.float32)).to(frame.device))
    out_level.cache[key] = taps
    return taps


def _resize_path(x: BlockTensor, path: int, taps: ResizeTaps) -> torch.Tensor:
    table = pixel_table(pad_blocks(x, path, taps.hy, taps.hx, mode="replicate"))
    weight = taps.weight.to(table.dtype)
    out = F.embedding(taps.index[0], table).mul_(weight[0])
    for k in (1, 2, 3):
        out.addcmul_(F.embedding(taps.index[k], table), weight[k])
    return out.view(-1, taps.block, taps.block, table.shape[1]).permute(0, 3, 1, 2)


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


