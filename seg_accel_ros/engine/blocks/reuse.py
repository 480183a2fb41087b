"""REUSE blocks: features taken from the previous frame's maps, moved by the estimated motion.

The temporal feature cache is the set of maps that the previous frame's ops read across block
borders (inputs of padded convolutions and poolings, of bilinear upsamplings, of global modules,
and the network output), in the order the ops ran, each kept as one pixel table per path in
that frame's block layout (references to tensors the forward pass made anyway: no copies).

In the current frame, such an op first *completes* its input: the REUSE blocks' pixels are
looked up in the same op's cached map, each at the position the motion field says it came from
(nearest pixel at the map's resolution), in whichever block held it then (FULL, LOW
nearest-upsampled, or REUSE). BlockPad then treats REUSE blocks like full-resolution
neighbours, and the completed map is recorded as the next frame's cache. A frame whose
blocks are all REUSE runs no op: every cached map is moved as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.blockpad import pixel_table
from seg_accel_ros.engine.blocks.gather import empty_blocks
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import FULL, LOW, REUSE, Frame
from seg_accel_ros.engine.blocks.tensor import BlockTensor

MapKey = tuple[int, tuple[int, int], int]  # FULL block size, valid extent, channels


class CacheMissError(RuntimeError):
    """The cache has no map for an op of this frame (different network path or frame size)."""


@dataclass(frozen=True)
class MotionField:
    """Where each pixel of the current frame was in the previous one: ``flow[y, x] = (dx, dy)``
    in input pixels, sampled on a grid ``scale`` times coarser than the input."""

    flow: np.ndarray
    scale: float

    @staticmethod
    def still(height: int, width: int) -> MotionField:
        """No motion (one sample per 16 pixels is plenty)."""
        return MotionField(np.zeros((-(-height // 16), -(-width // 16), 2), np.float32), 16.0)


@dataclass(frozen=True)
class CachedMap:
    """One op's input map of one frame: a pixel table per path, in that frame's layout."""

    key: MapKey
    paths: np.ndarray  # cell -> BlockPath
    slots: np.ndarray  # cell -> block position in its path's table
    tables: dict[int, torch.Tensor]  # path -> (blocks * b * b) x C rows


@dataclass(frozen=True)
class FeatureCache:
    """The maps a frame recorded, to REUSE blocks from in the next frame."""

    grid: BlockGrid
    maps: tuple[CachedMap, ...]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for m in self.maps for t in m.tables.values())


def map_key(x: BlockTensor) -> MapKey:
    return x.level.bf, tuple(x.level.ext[FULL]), int(x.shape[1])


class ReuseContext:
    """One frame's access to the cache: fills REUSE blocks in, records the next cache."""

    def __init__(self, frame: Frame, previous: FeatureCache | None, motion: MotionField | None
                 ) -> None:
        if frame.reused and (previous is None or previous.grid != frame.grid or motion is None):
            raise CacheMissError("REUSE blocks need a cache of the same frame size and a "
                                 "motion field")
        self.frame = frame
        self.previous = previous
        self.motion = motion
        self.recorded: list[CachedMap] = []
        self._warps: dict[tuple[int, tuple[int, int]], list[tuple]] = {}

    def cache(self) -> FeatureCache:
        """What this frame recorded."""
        return FeatureCache(self.frame.grid, tuple(self.recorded))

    def complete(self, x: BlockTensor) -> BlockTensor:
        """``x`` with its REUSE blocks filled in from the cache; recorded for the next frame."""
        if REUSE in x.parts:
            return x
        if x.completed is not None:
            return x.completed
        key = map_key(x)
        if self.frame.reused:
            prev = self._previous_map(len(self.recorded), key)
            parts = dict(x.parts)
            parts[REUSE] = self._moved(prev, self.frame.cells_np[REUSE])
            done = BlockTensor(x.level, parts)
        else:
            done = x
        self._record(key, done.parts)
        x.completed = done
        return done

    def replay(self) -> CachedMap:
        """All blocks REUSE: move every cached map as a whole; returns the last (the output)."""
        assert self.previous is not None
        cells = np.arange(self.frame.grid.rows * self.frame.grid.cols)
        for i, prev in enumerate(self.previous.maps):
            self._record(prev.key, {REUSE: self._moved(self._previous_map(i, prev.key), cells)})
        if not self.recorded:
            raise CacheMissError("the cache is empty")
        return self.recorded[-1]

    def _previous_map(self, index: int, key: MapKey) -> CachedMap:
        maps = self.previous.maps if self.previous is not None else ()
        if index >= len(maps) or maps[index].key != key:
            raise CacheMissError(f"no cached map for op {index} with (block, extent, "
                                 f"channels) {key}")
        return maps[index]

    def _record(self, key: MapKey, parts: dict[int, torch.Tensor]) -> None:
        self.recorded.append(CachedMap(key, self.frame.path_np, self.frame.slot_np,
                                       {p: pixel_table(t) for p, t in parts.items()}))

    def _moved(self, prev: CachedMap, cells: np.ndarray) -> torch.Tensor:
        """The full-resolution blocks ``cells`` of ``prev``'s map after the motion."""
        bf, ext, c = prev.key
        sources = self._warp(prev, bf, ext, cells)
        any_table = next(iter(prev.tables.values()))
        n = cells.size
        if len(sources) == 1 and sources[0][1] is None:
            q, _, idx = sources[0]
            rows = F.embedding(idx, prev.tables[q])
        else:
            rows = any_table.new_empty((n * bf * bf, c))
            for q, pos, idx in sources:
                rows.index_copy_(0, pos, F.embedding(idx, prev.tables[q]))
        out = empty_blocks(n, c, bf, bf, any_table)
        out.permute(0, 2, 3, 1).copy_(rows.view(n, bf, bf, c))
        return out

    def _warp(self, prev: CachedMap, bf: int, ext: tuple[int, int], cells: np.ndarray
              ) -> list[tuple]:
        """Per source path of ``prev``: (path, positions in the output or None for all, rows)."""
        key = (bf, ext, id(prev.paths), cells.size)
        found = self._warps.get(key)
        if found is not None:
            return found
        grid = self.frame.grid
        cols = grid.cols
        s = grid.block_size / bf  # input pixels per map pixel
        motion = self.motion
        assert motion is not None
        gy, gx = cells // cols, cells % cols
        ar = np.arange(bf)
        yy = gy[:, None] * bf + ar  # n x bf map rows
        xx = gx[:, None] * bf + ar
        fh, fw = motion.flow.shape[:2]
        my = np.clip(((yy + 0.5) * s / motion.scale).astype(np.int64), 0, fh - 1)
        mx = np.clip(((xx + 0.5) * s / motion.scale).astype(np.int64), 0, fw - 1)
        d = motion.flow[my[:, :, None], mx[:, None, :]]  # n x bf x bf x 2
        hv, wv = ext
        sy = np.clip(np.rint(yy[:, :, None] + d[..., 1] / s), 0, hv - 1).astype(np.int64)
        sx = np.clip(np.rint(xx[:, None, :] + d[..., 0] / s), 0, wv - 1).astype(np.int64)
        cy, cx = sy // bf, sx // bf
        cell = (cy * cols + cx).ravel()
        ly, lx = (sy - cy * bf).ravel(), (sx - cx * bf).ravel()
        src_path = prev.paths[cell]
        src_slot = prev.slots[cell]
        dev = self.frame.device
        sources = []
        for q in prev.tables:
            mask = src_path == q
            if not mask.any():
                continue
            everywhere = bool(mask.all())
            pos = None if everywhere else np.flatnonzero(mask)
            sl, y, x = (src_slot, ly, lx) if everywhere else (src_slot[pos], ly[pos], lx[pos])
            if q == LOW:
                b2 = bf // 2
                idx = sl * (b2 * b2) + (y // 2) * b2 + x // 2
            else:
                idx = sl * (bf * bf) + y * bf + x
            sources.append((q, None if pos is None else torch.from_numpy(pos).to(dev),
                            torch.from_numpy(idx.astype(np.int64)).to(dev)))
        self._warps[key] = sources
        return sources

