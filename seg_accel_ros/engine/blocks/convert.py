"""Make an existing ``nn.Module`` run block-wise, without rewriting it.

Mechanism: the network's input becomes a :class:`~.tensor.BlockTensor` (a tensor subclass that
holds one batch of blocks per path and reports the dense shape) and the module's own
``forward`` runs unchanged; every torch function it calls on a block tensor is intercepted by
``__torch_function__`` and executed block-wise (the ``ops`` package).

Why this and not the alternatives:

- ``torch.fx`` tracing + graph rewriting fails on the Python control flow and shape arithmetic
  real networks contain (``x.shape[-2:]`` passed to ``interpolate``, crops to a skip's size,
  loops over stages, ``if`` on sizes), and needs a rewrite rule for every call form;
- replacing modules (``nn.Conv2d`` -> ``BlockConv2d`` ...) misses the functional calls that
  carry most of the cross-level structure (``F.interpolate``, ``torch.cat``, ``x + skip``,
  ``.view`` of pooled vectors) and mutates the user's model.

A tensor subclass sees every call whatever the code looks like, keeps the model untouched, and
lets unknown operations run densely on the assembled map instead of failing (they are counted,
see :attr:`BlockwiseModel.last_fallbacks`). The cost is a few microseconds of Python per torch
call, small against convolutions on 720p feature maps.

Global modules (pyramid pooling, global context) are either declared (``global_modules``
names, or a ``block_global_modules`` attribute on the model; the registry's
``spec.extra["global_modules"]``) and then run as a whole on the assembled map, or detected
per operation: global average pooling has a block form, other global reductions fall back to
the assembled map.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.engine.blocks import ops
from seg_accel_ros.engine.blocks.gather import (
    dense_from_blocks,
    downsample_avg2,
    grid_view,
    image_to_blocks,
    put_blocks,
)
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import FULL, LOW, REUSE, Frame, Level, Scratch
from seg_accel_ros.engine.blocks.reuse import (
    FeatureCache,
    MotionField,
    ReuseContext,
    ReusedBlocks,
)
from seg_accel_ros.engine.blocks.tensor import FALLBACKS, BlockTensor, completed, with_reused
from seg_accel_ros.engine.result import PixelReduction
from seg_accel_ros.engine.upsampled_labels import (
    network_pixel_maps,
    one_map,
    resized_labels,
)

PixelReduce = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
TemporalInput = tuple[FeatureCache | None, MotionField | None]


def output_parts(x: BlockTensor) -> dict[int, torch.Tensor]:
    """The output blocks at full resolution: LOW blocks upsampled 2x bilinearly (their halo
    from the neighbours by the BlockPad rules, clamped at the image border)."""
    return {p: ops.upsample_path(x, LOW, 2, "bilinear") if p == LOW else t
            for p, t in with_reused(x).items()}


def blocks_to_dense_output(x: BlockTensor, crop: bool = True) -> torch.Tensor:
    """The network output as a dense map at full resolution (:func:`output_parts` scattered).

    The map has the blocks' memory layout (channels-last, or channel-planar when every part
    is), so that scattering needs no transposition. ``crop=False`` keeps the whole grid (what lies
    past the valid extent is undefined).
    """
    x = completed(x)
    level = x.level
    frame = level.frame
    b = level.bf
    rows, cols = frame.grid.shape
    parts = output_parts(x)
    any_part = next(iter(parts.values()))
    c = any_part.shape[1]
    planar = all(t.is_contiguous() for t in parts.values())
    shape = (c, rows * b, cols * b) if planar else (rows * b, cols * b, c)
    canvas = torch.empty(shape, dtype=any_part.dtype, device=any_part.device)
    if planar:  # rows, cols, C, b, b view of the C x H x W map
        cells = canvas.unflatten(1, (rows, b)).unflatten(3, (cols, b)).permute(1, 3, 0, 2, 4)
    else:
        cells = grid_view(canvas, rows, cols, b)
    for path, part in parts.items():
        gy, gx = frame.block_coords(path)
        put_blocks(cells, gy, gx, part if planar else part.permute(0, 2, 3, 1))
    h, w = level.ext[FULL]
    out = canvas[None] if planar else canvas.permute(2, 0, 1)[None]
    return out[:, :, :h, :w] if crop else out


def fused_low_output(x: BlockTensor, fusion: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The LOW blocks' output at full and at half resolution, fused with the moved output of
    their last FULL computation where there is one (:mod:`seg_accel_ros.engine.fusion`).
    Later frames that REUSE these blocks read the fused output (at half resolution, as for
    plain LOW blocks)."""
    low = x.parts[LOW]
    up = ops.upsample_path(x, LOW, 2, "bilinear")
    ctx = x.level.frame.reuse
    moved = ctx.moved_full(x, LOW) if ctx is not None else None
    if moved is None:
        return up, low
    fused = fusion(low, *(m.to(low.dtype) for m in moved), low_up=up)
    half = F.avg_pool2d(fused, 2)
    ctx.replace_low_output(x, half)
    return fused, half


def reduce_output(x: BlockTensor, reduce: PixelReduce, fusion: nn.Module | None = None
                  ) -> tuple[torch.Tensor, ...]:
    """``reduce`` on each path's full-resolution output blocks, its per-pixel maps scattered
    into ``H x W`` maps: the ``C``-channel map is never assembled. ``fusion``: LOW blocks
    fused with moved FULL output (temporal frames only, :func:`fused_low_output`)."""
    x = completed(x)
    level = x.level
    frame = level.frame
    b = level.bf
    rows, cols = frame.grid.shape
    h, w = level.ext[FULL]
    maps: list[torch.Tensor] = []

    def scatter(path: int, reduced: tuple[torch.Tensor, ...], sel: slice = slice(None)
                ) -> None:
        gy, gx = (t[sel] for t in frame.block_coords(path))
        for i, m in enumerate(reduced):
            if i == len(maps):
                maps.append(m.new_empty((rows * b, cols * b)))
            put_blocks(grid_view(maps[i][..., None], rows, cols, b), gy, gx, m[..., None])

    ctx = frame.reuse
    for path, part in x.parts.items():
        if path != LOW:
            reduced = reduce(part)
            scatter(path, reduced)
        elif fusion is not None and ctx is not None:
            full_res, part = fused_low_output(x, fusion)
            scatter(path, reduce(full_res))
        else:
            for sel, chunk in ops.upsampled_maps(x, LOW, 2, reduce):
                scatter(path, chunk, sel)
        if ctx is not None:  # what later frames' REUSE pixels will read (LOW: its own pixels)
            ctx.record_reduced(x, path, reduce(part) if path == LOW else reduced)
    if x.reused is not None:
        reused = x.reused.reduced()
        scatter(REUSE, reused if reused is not None else reduce(x.reused.blocks()))
    return tuple(m[:h, :w] for m in maps)


def reused_output(reused: ReusedBlocks, frame: Frame, ext: tuple[int, int]) -> BlockTensor:
    """The network output of a frame whose blocks are all REUSE: the moved cached output."""
    level = frame.level(reused.bf, ext, tuple(-(-e // 2) for e in ext))
    shape = (reused.n, reused.channels, reused.bf, reused.bf)
    proto = next(t for per in reused.tables.values() for t in per.values())
    out = BlockTensor(level, {REUSE: proto.new_empty(()).expand(shape)})  # shape only
    out.parts = {}  # every block is REUSE: gathered on demand (with_reused, reduce_output)
    out.reused = reused
    out.completed = out  # already the recorded output map
    return out


def _half_image(x: torch.Tensor) -> torch.Tensor:
    """The 2x2 average of an image (an odd last row / column padded with zeros), the LOW
    path's input."""
    h, w = int(x.shape[2]), int(x.shape[3])
    return downsample_avg2(F.pad(x, (0, w % 2, 0, h % 2)) if h % 2 or w % 2 else x)


def _half_size(size: tuple[int, int]) -> tuple[int, int]:
    return (-(-size[0] // 2), -(-size[1] // 2))


def _even(size: tuple[int, int]) -> tuple[int, int]:
    return (size[0] + size[0] % 2, size[1] + size[1] % 2)


def _low_output(v: Any, size: tuple[int, int]) -> Any:
    """A map the network computed on the half image, upsampled 2x; a map of the half
    image's size is cropped back to ``size``."""
    if not (isinstance(v, torch.Tensor) and v.dim() == 4):
        return v
    half = tuple(v.shape[2:]) == _half_size(size)
    v = F.interpolate(v, scale_factor=2, mode="bilinear", align_corners=False)
    return v[:, :, :size[0], :size[1]] if half else v


def _to_dense_tree(obj: Any, crop: bool) -> Any:
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_dense_tree(o, crop) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_dense_tree(v, crop) for k, v in obj.items()}
    return blocks_to_dense_output(obj, crop) if isinstance(obj, BlockTensor) else obj


class BlockwiseModel:
    """``model(x, paths)``: run ``module`` on a ``1 x 3 x H x W`` input block by block.

    ``paths`` is a ``rows x cols`` map of :class:`~seg_accel_ros.engine.result.BlockPath`
    (FULL or LOW) over ``block_size`` blocks. Returns what the module returns, with block
    tensors turned into dense full-resolution maps.

    ``dense_single_path``: a frame whose blocks all take one path runs as the plain dense
    network (on the 2x2-pooled image for LOW, upsampled 2x), which is what block execution
    computes then, minus its bookkeeping (all-FULL key frames cost what the dense network
    costs). Turn it off to run such frames through the block machinery.

    ``dense_keyframes`` (temporal frames): an all-FULL frame runs the plain dense network
    too, and caches only its output. The next frame can then REUSE all of its blocks or none
    (frame-granular reuse, :class:`~seg_accel_ros.engine.temporal_policy.TemporalPolicy`);
    a mix raises :class:`~.reuse.CacheMissError`.
    """

    def __init__(self, module: nn.Module, block_size: int = 128,
                 global_modules: Sequence[str] = (), dense_single_path: bool = True) -> None:
        self.module = module
        self.block_size = block_size
        self.dense_single_path = dense_single_path
        names = list(global_modules) + list(getattr(module, "block_global_modules", ()))
        self.global_modules = {n: module.get_submodule(n) for n in dict.fromkeys(names)}
        self.last_fallbacks: Counter[str] = Counter()
        self.last_frame: Frame | None = None
        self.last_cache: FeatureCache | None = None
        self.fusion: nn.Module | None = None  # LOW-block fusion in temporal frames
        self.dense_keyframes = False
        self._scratch = Scratch()

    def grid(self, height: int, width: int) -> BlockGrid:
        return BlockGrid(height, width, self.block_size)

    def __call__(self, x: torch.Tensor, paths: torch.Tensor, crop: bool = True,
                 temporal: TemporalInput | None = None) -> Any:
        """Run the frame; ``crop=False`` may return maps larger than the dense network's
        (the whole block grid; see :func:`blocks_to_dense_output`). ``temporal``: see
        :meth:`per_pixel`."""
        with self._temporal(x, paths, temporal) as frame:
            return _to_dense_tree(self._forward(x, frame), crop)

    def per_pixel(self, x: torch.Tensor, paths: torch.Tensor, reduce: PixelReduce,
                  temporal: TemporalInput | None = None) -> tuple[torch.Tensor, ...]:
        """Run the frame and reduce its output per pixel: ``reduce`` maps an ``N x C x h x w``
        batch to ``N x h x w`` maps (labels, confidence ...), returned as ``H x W`` maps.
        Cheaper than reducing the assembled ``C``-channel map. The module must return one
        4-D map.

        ``temporal`` = (previous frame's cache or None, motion field or None): REUSE blocks
        are allowed in ``paths`` and every frame records its cache (:attr:`last_cache`),
        reduced maps included: ``reduce`` must then be the same for every frame of the stream
        (REUSE pixels take the maps earlier frames reduced to)."""
        with self._temporal(x, paths, temporal) as frame:
            single = self._single_path(frame)
            if single is not None and isinstance(reduce, PixelReduction):
                self.last_fallbacks = Counter()
                return tuple(m[0] for m in self._dense_maps(x, single, reduce))
            out = self._forward(x, frame)
            if isinstance(out, BlockTensor):
                return reduce_output(out, reduce, self.fusion)
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                return tuple(m[0] for m in reduce(out))
        raise TypeError(f"per_pixel needs a module returning one 4-D map, got {type(out)}")

    @contextmanager
    def _temporal(self, x: torch.Tensor, paths: torch.Tensor, temporal: TemporalInput | None
                  ) -> Iterator[Frame]:
        """The frame's layout, with its :class:`ReuseContext` attached in temporal mode."""
        if x.dim() != 4 or x.shape[0] != 1:
            raise ValueError(f"expected a 1 x C x H x W input, got {tuple(x.shape)}")
        frame = self._frame(int(x.shape[2]), int(x.shape[3]), paths, x.device,
                            allow_reuse=temporal is not None)
        if temporal is None:
            yield frame
            return
        frame.reuse = ReuseContext(frame, *temporal, track_full=self.fusion is not None)
        try:
            yield frame
            self.last_cache = frame.reuse.cache()
        finally:
            frame.reuse = None

    def _forward(self, x: torch.Tensor, frame: Frame) -> Any:
        """The module's output on the frame: block tensors, or dense for single-path frames."""
        reuse = frame.reuse
        if reuse is not None and not frame.present:  # all REUSE: nothing runs
            return reused_output(reuse.replay(), frame, reuse.ops[-1].key[1])
        single = self._single_path(frame)
        if single is not None:
            self.last_fallbacks = Counter()
            return self._dense(x, single)
        if self.dense_keyframes and reuse is not None and frame.present == (FULL,) \
                and not frame.reused:
            self.last_fallbacks = Counter()
            out = self._dense(x, FULL)
            if not (isinstance(out, torch.Tensor) and out.dim() == 4):
                raise TypeError("dense keyframes need a module returning one 4-D map")
            return image_to_blocks(out, frame)  # the output map, the only one cached
        before = FALLBACKS.copy()
        with self._global_hooks():
            out = self.module(image_to_blocks(x, frame))
        self.last_fallbacks = FALLBACKS - before
        return out

    def _frame(self, height: int, width: int, paths: torch.Tensor, device: torch.device,
               allow_reuse: bool = False) -> Frame:
        """The frame layout; the previous one (with its index plans) if nothing changed."""
        grid = self.grid(height, width)
        paths = grid.check_paths(paths, allow_reuse)
        last = self.last_frame
        if (last is not None and last.grid == grid and last.device == torch.device(device)
                and torch.equal(last.paths, paths)):
            return last
        if last is not None:
            last.release()
        self.last_frame = Frame(grid, paths, device, self._scratch)
        return self.last_frame

    def _single_path(self, frame: Frame) -> int | None:
        """The path of a frame that runs as the plain network (``dense_single_path``)."""
        if self.dense_single_path and frame.reuse is None and len(frame.present) == 1:
            return frame.present[0]
        return None

    def _dense_maps(self, x: torch.Tensor, path: int, reduce: PixelReduction
                    ) -> tuple[torch.Tensor, ...]:
        """``reduce`` of :meth:`_dense`'s output, ``1 x H x W`` maps; labels alone without
        the full-size logits (:mod:`~seg_accel_ros.engine.upsampled_labels`)."""
        if path == FULL:
            return network_pixel_maps(self.module, x, reduce)
        size = (int(x.shape[2]), int(x.shape[3]))
        out = one_map(self.module(_half_image(x)), "per_pixel")
        if not reduce.confidence and x.device.type == "cpu" \
                and tuple(out.shape[2:]) == _half_size(size):
            labels = resized_labels(reduce.classes_of(out).float(), _even(size))
            assert labels is not None  # twice the size is an integer multiple
            return (labels[:, :size[0], :size[1]],)
        return reduce(_low_output(out, size))

    def _dense(self, x: torch.Tensor, path: int) -> Any:
        """The plain network on the image (FULL) or its 2x2 average (LOW, output upsampled)."""
        if path == FULL:
            return self.module(x)
        size = (int(x.shape[2]), int(x.shape[3]))
        return ops.tree_map(self.module(_half_image(x)), lambda v: _low_output(v, size))

    @contextmanager
    def _global_hooks(self) -> Iterator[None]:
        """Declared global modules see dense maps; their outputs are split back into blocks."""
        handles = []
        for module in self.global_modules.values():
            stack: list[list[Level]] = []

            def pre(_m: nn.Module, args: tuple, stack: list = stack) -> tuple:
                found: list[Level] = []

                def unwrap(v: Any) -> Any:
                    if isinstance(v, BlockTensor):
                        found.append(v.level)
                        return dense_from_blocks(v)
                    return v

                stack.append(found)
                return ops.tree_map(args, unwrap)

            def post(_m: nn.Module, _args: tuple, out: Any, stack: list = stack) -> Any:
                levels = stack.pop()
                return ops.resplit(out, levels) if levels else out

            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        try:
            yield
        finally:
            for h in handles:
                h.remove()
