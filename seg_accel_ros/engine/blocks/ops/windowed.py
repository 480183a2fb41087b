"""Convolution and pooling (any kernel, stride, dilation, groups) with BlockPad halos.

Three ways to give a path's blocks their halo, chosen per op (:func:`_strategy`):

- ``gather``: one padded copy of every block (``blockpad.pad_blocks``), op with padding 0;
- ``ring``: the op with its own padding on the bare blocks, then only the outputs that read
  the halo redone from thin strips (no copy of the batch: for memory-bound ops such as
  depthwise convolutions on large blocks);
- ``canvas``: the op with its own padding on one map of the whole level at the path's
  resolution (other-path blocks converted by the rules), the path's blocks cut out of the
  result (small blocks with wide halos, where a padded copy would read several times the
  block; in a single-path frame this is exactly the dense op).

All three compute the same values (``test_engine.py`` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.blockpad import (
    PadPlan,
    gather_padded,
    pad_blocks,
    pad_plan,
    past_extent,
)
from seg_accel_ros.engine.blocks.gather import (
    channels_last,
    grid_view,
    put_blocks,
    to_resolution,
)
from seg_accel_ros.engine.blocks.layout import FULL, LOW, Level
from seg_accel_ros.engine.blocks.ops.common import NotLocal, bind, block_op, out_extent, pair
from seg_accel_ros.engine.blocks.tensor import BlockTensor, completed, register, with_reused
from seg_accel_ros.models.clamped_conv import Clamp, conv2d_clamped
from seg_accel_ros.models.pointwise import pointwise_conv2d


def _ring(b: int, k: int, s: int, p: int, d: int) -> tuple[int, int, int]:
    """Along one axis: (outputs per block, outputs reading before the block, first output
    reading past it) for a window op with padding ``p`` on a ``b``-pixel block."""
    n = b // s
    first = -(-p // s)
    last = max(first, min(n, -(-(b + p - d * (k - 1)) // s)))
    return n, first, last


def _span(o0: int, o1: int, k: int, s: int, d: int) -> tuple[int, int]:
    """Padded-input rows that outputs [o0, o1) read (padding 0 at padded row 0)."""
    return o0 * s, (o1 - 1) * s + d * (k - 1) + 1


def _ring_op(x: BlockTensor, path: int, kernel: tuple[int, int], stride: int,
             padding: tuple[int, int], dilation: tuple[int, int],
             native: Callable[[torch.Tensor], torch.Tensor],
             run: Callable[[torch.Tensor], torch.Tensor], value: float) -> torch.Tensor | None:
    """The op on bare blocks with its own padding, then the border outputs redone from halo
    strips: no padded copy of the whole batch (for memory-bound ops on large blocks)."""
    level = x.level
    b = level.block(path)
    ny, ty, by = _ring(b, kernel[0], stride, padding[0], dilation[0])
    nx, tx, bx = _ring(b, kernel[1], stride, padding[1], dilation[1])
    if by - ty < 2 or bx - tx < 2:
        return None  # (almost) all border
    out = native(x.parts[path])
    sides = (((0, ty), (0, nx)), ((by, ny), (0, nx)), ((ty, by), (0, tx)), ((ty, by), (bx, nx)))
    for (o0, o1), (q0, q1) in sides:
        if o0 >= o1 or q0 >= q1:
            continue
        rows = _span(o0, o1, kernel[0], stride, dilation[0])
        cols = _span(q0, q1, kernel[1], stride, dilation[1])
        plan = pad_plan(level, path, padding[0], padding[1], "constant", rows, cols)
        out[:, :, o0:o1, q0:q1] = run(gather_strip(x, path, plan, value))
    # Blocks reaching past the valid extent: there their own pixels must read as padding.
    # Outputs that read none of those pixels are right; the rest are redone from padded rows
    # (columns), as the padded gather computes them. Outputs past the extent too: at an odd
    # FULL extent a LOW pixel's 2x2 average takes in the first FULL pixel past it.
    n_out = (ny, nx)
    for group in past_extent(level, path):
        a = group.dim - 2
        o0 = max(0, -(-(group.first + padding[a] - dilation[a] * (kernel[a] - 1)) // stride))
        if o0 >= n_out[a]:
            continue
        spans = [_span(0, n_out[i], kernel[i], stride, dilation[i]) for i in (0, 1)]
        spans[a] = _span(o0, n_out[a], kernel[a], stride, dilation[a])
        plan = pad_plan(level, path, padding[0], padding[1], "constant", *spans,
                        past=(group.dim, group.first))
        redone = run(gather_strip(x, path, plan, value))
        if a == 0:
            out[group.blocks_dev, :, o0:] = redone
        else:
            out[group.blocks_dev, :, :, o0:] = redone
    return out


def gather_strip(x: BlockTensor, path: int, plan: PadPlan, value: float,
            tables: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    n, h, w = plan.shape
    src = x.parts[path]
    buf = x.level.frame.scratch.flat(n * h * w * src.shape[1], src)
    return gather_padded(x, path, plan, value, buf, tables)


def _canvas_op(x: BlockTensor, path: int, value: float,
               native: Callable[[torch.Tensor], torch.Tensor], out_block: int) -> torch.Tensor:
    """The op, with its own padding, on one dense map of the level at ``path``'s resolution
    (other-path blocks converted by the BlockPad rules, the padding value past the valid
    extent); then ``path``'s blocks cut out of the result. The map lives in the scratch
    buffer."""
    level = x.level
    frame = level.frame
    b = level.block(path)
    rows, cols = frame.grid.shape
    src = x.parts[path]
    c = src.shape[1]
    height, width = rows * b, cols * b
    canvas = frame.scratch.flat(height * width * c, src)[: height * width * c].view(
        height, width, c)
    cells = grid_view(canvas, rows, cols, b)
    for q, part in with_reused(x).items():
        gy, gx = frame.block_coords(q)
        put_blocks(cells, gy, gx,
                   channels_last(to_resolution(part, q, path)).permute(0, 2, 3, 1))
    hv, wv = level.ext[path]
    canvas[hv:].fill_(value)
    canvas[:, wv:].fill_(value)
    out = native(canvas.unsqueeze(0).permute(0, 3, 1, 2))
    hwc = channels_last(out).permute(0, 2, 3, 1)[0, : rows * out_block, : cols * out_block]
    gy, gx = frame.block_coords(path)
    return grid_view(hwc, rows, cols, out_block)[gy, gx].permute(0, 3, 1, 2)


def _strategy(level: Level, path: int, stride: int, padding: tuple[int, int], work: float,
              ring_ok: bool) -> str:
    """How to give ``path``'s blocks their halo: "ring" (op on bare blocks, border redone
    from strips), "gather" (padded copy of each block) or "canvas" (op on one dense map).

    Rings on large blocks of memory-bound ops; otherwise the cheaper of gather and canvas by a
    rough cost model (per input channel: a copied pixel costs :data:`COPY_COST` multiply-adds,
    an output pixel ``work``). Small blocks with wide halos copy several times their own size;
    a canvas instead computes the op on the other path's cells too.
    """
    frame = level.frame
    b = level.block(path)
    if b >= RING_MIN_BLOCK and ring_ok:
        return "ring"
    n, cells = frame.counts[path], frame.grid.rows * frame.grid.cols
    o = b // stride
    gather = n * ((b + 2 * padding[0]) * (b + 2 * padding[1]) * COPY_COST + o * o * work)
    canvas = cells * ((b * b + o * o) * COPY_COST + o * o * work)
    return "canvas" if canvas < gather else "gather"


def _windowed(x: BlockTensor, kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int], dilation: tuple[int, int],
              run: Callable[[torch.Tensor], torch.Tensor], mode: str = "constant",
              value: float = 0.0, ceil_mode: bool = False,
              native: Callable[[torch.Tensor], torch.Tensor] | None = None,
              work: float = 1.0, ring_ok: bool = True) -> BlockTensor:
    """Run ``run`` (the op with padding 0) on each path's BlockPad-padded blocks.

    ``native`` (the op with its own constant padding) enables the strategies of
    :func:`_strategy`, with ``work`` (multiply-adds per output pixel and input channel) and
    ``ring_ok`` (memory-bound: worth avoiding a padded copy).
    """
    level = x.level
    frame = level.frame
    s = stride[0]
    if stride[1] != s or level.bf % s:
        raise NotLocal
    for path in x.parts:
        b = level.block(path)
        if b % s:
            raise NotLocal
        for a in (0, 1):
            if out_extent(b, kernel[a], s, padding[a], dilation[a]) < b // s:
                raise NotLocal
    ext = {path: tuple(out_extent(level.ext[path][a], kernel[a], s, padding[a], dilation[a],
                                   ceil_mode) for a in (0, 1))
           for path in (FULL, LOW)}
    if not frame.supports(level.bf // s):
        raise NotLocal
    out_level = frame.level(level.bf // s, ext[FULL], ext[LOW])
    if padding != (0, 0):
        x = completed(x)  # halos may come from REUSE blocks
    parts = {}
    for path in x.parts:
        n = level.block(path) // s
        y = None
        how = ("gather" if padding == (0, 0) or mode != "constant" or native is None else
               _FORCED[0] or _strategy(level, path, s, padding, work, ring_ok))
        if how == "canvas":
            y = _canvas_op(x, path, value, native, n)
        elif how == "ring":
            y = _ring_op(x, path, kernel, s, padding, dilation, native, run, value)
        if y is None:
            y = run(pad_blocks(x, path, padding[0], padding[1], mode, value))
        parts[path] = y if y.shape[-1] == n and y.shape[-2] == n else y[:, :, :n, :n]
    return BlockTensor(out_level, parts)


RING_MIN_BLOCK = 32  # below, halo strips are most of the block: gather the padded batch
COPY_COST = 8.0  # multiply-adds a copied pixel (per channel) is worth, roughly
STRATEGIES = ("gather", "ring", "canvas")
_FORCED: list[str | None] = [None]


@contextmanager
def forced_strategy(name: str | None) -> Iterator[None]:
    """Use one halo strategy for every padded op (to compare them; ``None``: automatic)."""
    if name is not None and name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}")
    previous = _FORCED[0]
    _FORCED[0] = name
    try:
        yield
    finally:
        _FORCED[0] = previous


def _conv_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]
                  ) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = [dilation[a] * (kernel[a] - 1) for a in (0, 1)]
        if any(t % 2 for t in total):
            raise NotLocal  # asymmetric
        return total[0] // 2, total[1] // 2
    return pair(padding)


@register(torch.conv2d)
@block_op
def _conv2d(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
              {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    return _conv_blocks(a, None)


@register(conv2d_clamped)
@block_op
def _conv2d_clamped(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups",
                             "clamp"), {})
    return _conv_blocks(a, a["clamp"])


def _conv_blocks(a: dict[str, Any], clamp: Clamp | None) -> BlockTensor:
    """A convolution's bound arguments run block-wise; ``clamp``: its fused activation."""
    x, weight, bias = a["input"], a["weight"], a["bias"]
    if not isinstance(x, BlockTensor) or isinstance(weight, BlockTensor) or x.dim() != 4:
        raise NotLocal
    kernel = (int(weight.shape[-2]), int(weight.shape[-1]))
    stride, dilation, groups = pair(a["stride"]), pair(a["dilation"]), a["groups"]
    padding = _conv_padding(a["padding"], kernel, dilation)
    pointwise = kernel == (1, 1) and stride == (1, 1) and padding == (0, 0) and groups == 1

    def conv(t: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
        if clamp is not None:
            return conv2d_clamped(t, weight, bias, stride, pad, dilation, groups, clamp)
        if pointwise:  # oneDNN's kernel beats a matrix product of the pixel table (addmm)
            return pointwise_conv2d(t, weight, bias)
        return torch.conv2d(t, weight, bias, stride, pad, dilation, groups)

    if pointwise:  # no halo
        return BlockTensor(x.level, {p: conv(t, padding) for p, t in x.parts.items()})
    # Depthwise convolutions and those of a few input channels (the stem) are memory-bound:
    # for them a padded copy of the batch costs about as much as the convolution itself.
    cin, cout = int(weight.shape[1]) * groups, int(weight.shape[0])
    return _windowed(x, kernel, stride, padding, dilation, lambda t: conv(t, (0, 0)),
                     native=lambda t: conv(t, padding),
                     work=kernel[0] * kernel[1] * cout / groups,
                     ring_ok=groups == cin or cin <= 4)


@register(F.max_pool2d, torch.max_pool2d)
@block_op
def _max_pool2d(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation",
                             "ceil_mode", "return_indices"),
              {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
               "return_indices": False})
    x = a["input"]
    if not isinstance(x, BlockTensor) or a["return_indices"]:
        raise NotLocal
    kernel = pair(a["kernel_size"])
    stride = pair(a["stride"]) if a["stride"] not in (None, ()) else kernel
    padding, dilation = pair(a["padding"]), pair(a["dilation"])
    return _windowed(x, kernel, stride, padding, dilation,
                     lambda t: F.max_pool2d(t, kernel, stride, 0, dilation),
                     value=-math.inf, ceil_mode=bool(a["ceil_mode"]),
                     native=lambda t: F.max_pool2d(t, kernel, stride, padding, dilation),
                     work=kernel[0] * kernel[1])


@register(F.avg_pool2d)
@block_op
def _avg_pool2d(func: Callable, args: tuple, kwargs: dict) -> Any:
    a = bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "ceil_mode",
                             "count_include_pad", "divisor_override"),
              {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
               "divisor_override": None})
    x = a["input"]
    kernel = pair(a["kernel_size"])
    stride = pair(a["stride"]) if a["stride"] not in (None, ()) else kernel
    padding = pair(a["padding"])
    if (not isinstance(x, BlockTensor) or a["ceil_mode"]
            or (not a["count_include_pad"] and padding != (0, 0))):
        raise NotLocal
    div = a["divisor_override"]
    return _windowed(x, kernel, stride, padding, (1, 1),
                     lambda t: F.avg_pool2d(t, kernel, stride, 0, False, True, div),
                     native=lambda t: F.avg_pool2d(t, kernel, stride, padding, False, True, div),
                     work=kernel[0] * kernel[1])


