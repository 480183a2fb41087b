"""REUSE blocks: features taken from earlier frames' maps, moved by the estimated motion.

What is cached. Every op that reads across block borders (padded convolutions and poolings,
bilinear upsampling, global modules, the network output) records the map it read, as one pixel
table per computed path in that frame's block layout: references to tensors the forward pass
made anyway, no copies. Per resolution level, a *source index* says for every pixel of the
current frame's map where its feature lives: (frame, path, row of that frame's table). All ops
of a level share it, because they share the block layout.

What a frame does. Computed blocks point the index at their own rows; each REUSE pixel takes
the previous index at the position the motion field says it came from (nearest pixel at the
level's resolution), which may lie in a FULL, LOW (nearest-upsampled) or earlier REUSE block.
An op then reads REUSE pixels through the index only where it needs them: the halos of its
computed neighbours (BlockPad treats REUSE blocks as full-resolution neighbours), or the whole
map for dense global modules and the output. So REUSE costs index arithmetic per level and
the halo rows, not a copy of every feature map. Frames that no index points into any more
are dropped; with bounded staleness and keyframes that is at most a handful, and
of those only the rows still pointed at are kept (``compaction.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.blockpad import pixel_table
from seg_accel_ros.engine.blocks.compaction import compact
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import FULL, LOW, REUSE, Frame
from seg_accel_ros.engine.blocks.tensor import BlockTensor

MapKey = tuple[int, tuple[int, int], int]  # FULL block size, valid extent, channels
LevelKey = tuple[int, tuple[int, int]]  # FULL block size, valid extent
Tables = dict[int, dict[int, torch.Tensor]]  # frame id -> path -> pixel table
# A source is one int64: frame id << 34 | path << 32 | row.
_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1


def encode(frame_id: int, path: int, rows: np.ndarray) -> np.ndarray:
    return ((frame_id << 2 | path) << _ROW_BITS) + rows


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


def nearest_samples(count: int, s: float, scale: float, samples: int, step: int = 1
                    ) -> np.ndarray:
    """For every ``step``-th of ``count`` pixels ``s`` input pixels wide: the index of the
    flow sample (one per ``scale`` input pixels, ``samples`` of them) its centre lies in."""
    centres = np.arange(0, count, step, dtype=np.float64) + 0.5
    return np.minimum((centres * (s / scale)).astype(np.intp), samples - 1)


def motion_sources(motion: MotionField, height: int, width: int, s: float,
                   extent: tuple[int, int], step: int = 1) -> np.ndarray:
    """For every pixel of a ``height x width`` map whose pixels are ``s`` input pixels wide:
    the flat position (``row * width + column``) in the previous frame's map of the pixel the
    motion says it came from, the nearest one inside ``extent`` (rows, columns). With
    ``step`` > 1 only every ``step``-th row and column: the same positions, ``[::step, ::step]``."""
    fh, fw = motion.flow.shape[:2]
    y = np.arange(0, height, step, dtype=np.float64)
    x = np.arange(0, width, step, dtype=np.float64)
    my = nearest_samples(height, s, motion.scale, fh, step)
    mx = nearest_samples(width, s, motion.scale, fw, step)
    if motion.scale > s:
        # A source row depends on the pixel's row and the flow sample's column only (a
        # source column on its column and the sample's row): computed at that size, then
        # expanded (2-3x faster at 720p than per pixel).
        dy = motion.flow[:, :, 1].take(my, 0)  # height x fw
        dx = motion.flow[:, :, 0].take(mx, 1)  # fh x width
    elif (fh, fw) == (height, width) and motion.scale == s and step == 1:  # one per pixel
        dy, dx = motion.flow[..., 1], motion.flow[..., 0]
    else:
        d = motion.flow.take(my, 0).take(mx, 1)  # height x width x (dx, dy)
        dy, dx = d[..., 1], d[..., 0]
    # The flow is float32; positions in float64.
    sy = np.divide(dy, s, dtype=np.float64) if s != 1 else dy.astype(np.float64)
    sy += y[:, None]
    sx = np.divide(dx, s, dtype=np.float64) if s != 1 else dx.astype(np.float64)
    sx += x
    np.clip(np.rint(sy, out=sy), 0, extent[0] - 1, out=sy)
    np.clip(np.rint(sx, out=sx), 0, extent[1] - 1, out=sx)
    if motion.scale > s:
        rows = sy.astype(np.intp)
        rows *= width
        return rows.take(mx, 1) + sx.astype(np.intp).take(my, 0)
    sy *= width  # whole numbers, exact in float64
    sy += sx
    return sy.astype(np.intp)


@dataclass(frozen=True)
class OpMaps:
    """The tables one op read, in every frame that the source indexes still point into.

    ``reduced`` (the network output only): per frame and path, the per-pixel maps the frame's
    output was reduced to (labels, confidence ...), in the rows of ``tables``; REUSE pixels
    then gather those instead of reducing moved logits again (the same values: a per-pixel
    reduction commutes with moving pixels)."""

    key: MapKey
    tables: Tables
    reduced: dict[int, dict[int, tuple[torch.Tensor, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureCache:
    """What the next frame can REUSE from: per-op tables and per-level source indexes."""

    grid: BlockGrid
    frame_id: int
    ops: tuple[OpMaps, ...]
    indexes: dict[LevelKey, np.ndarray]  # rows*bf x cols*bf source codes
    # the output level's last-FULL index (fusion, see ReuseContext.moved_full): level, codes
    full_index: tuple[LevelKey, np.ndarray] | None = None

    def nbytes(self) -> int:
        """Bytes of feature tables held (each tensor counted once)."""
        seen = {id(t): t for op in self.ops for per in op.tables.values() for t in per.values()}
        return sum(t.numel() * t.element_size() for t in seen.values())

    @property
    def frames_held(self) -> int:
        return len({f for op in self.ops for f in op.tables})


class ReusedBlocks:
    """One map's REUSE blocks (``n x C x bf x bf``), read through the source index on demand."""

    def __init__(self, codes: torch.Tensor, tables: Tables, n: int, bf: int, channels: int,
                 op: OpMaps | None = None) -> None:
        self.codes = codes  # n*bf*bf sources, in REUSE-block order
        self.tables = tables
        self.n, self.bf, self.channels = n, bf, channels
        self.op = op  # the recorded map these blocks come from
        self._blocks: torch.Tensor | None = None
        self._sources: list[SourceRows] | None = None

    def reduced(self) -> tuple[torch.Tensor, ...] | None:
        """The output's per-pixel maps of these blocks (``n x bf x bf`` each), gathered from
        the frames' recorded reductions; None when a source frame has none recorded."""
        if self.op is None:
            return None
        per = self.op.reduced
        groups = [g for g, _, _ in self._split()]
        if not groups or any((g >> 2) not in per or (g & 3) not in per[g >> 2] for g in groups):
            return None
        count = len(per[groups[0] >> 2][groups[0] & 3])
        return tuple(_gather(self._split(), self.codes.numel(),
                             lambda g, i=i: per[g >> 2][g & 3][i])
                     .view(self.n, self.bf, self.bf) for i in range(count))

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any shape) of the REUSE pixel table: ``idx.shape + (C,)``."""
        codes = self.codes[idx.reshape(-1)]
        return self._lookup(codes).view(*idx.shape, self.channels)

    def blocks(self) -> torch.Tensor:
        """All REUSE blocks as a channels-last batch (gathered once)."""
        if self._blocks is None:
            n, b, c = self.n, self.bf, self.channels
            self._blocks = _gather(self._split(), self.codes.numel(), self._table).view(
                n, b, b, c).permute(0, 3, 1, 2)
        return self._blocks

    def _split(self) -> list[SourceRows]:
        if self._sources is None:
            self._sources = split_by_source(self.codes)
        return self._sources

    def _lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return _gather(split_by_source(codes), codes.numel(), self._table)

    def _table(self, group: int) -> torch.Tensor:
        frame_id, path = group >> 2, group & 3
        try:
            return self.tables[frame_id][path]
        except KeyError as exc:
            raise CacheMissError(f"frame {frame_id} path {path} is no longer cached") from exc


# (source group = frame id << 2 | path, positions in the codes or None for all, rows there)
SourceRows = tuple[int, torch.Tensor | None, torch.Tensor]


def split_by_source(codes: torch.Tensor) -> list[SourceRows]:
    """The codes grouped by the (frame, path) table they point into, in group order.

    Groups are counted with a bincount over their (small) range instead of ``torch.unique``,
    which sorts: 5-10x faster for the ~10^5 codes of a frame's REUSE blocks.
    """
    if codes.numel() == 0:
        return []
    groups = codes >> _ROW_BITS
    rows = codes & _ROW_MASK
    ids = groups.cpu().numpy().ravel()
    low = int(ids.min())
    span = int(ids.max()) - low
    present = (np.flatnonzero(np.bincount(ids - low)) + low if span < (1 << 20)
               else np.unique(ids))
    if present.size == 1:
        return [(int(present[0]), None, rows)]
    split = []
    for g in present.tolist():
        pos = (groups == g).nonzero().flatten()
        split.append((g, pos, rows[pos]))
    return split


def _gather(split: list[SourceRows], n: int, table_of: Callable[[int], torch.Tensor]
            ) -> torch.Tensor:
    """The ``n`` rows a :func:`split_by_source` names, in code order; ``table_of(group)`` is
    that source's table (``rows x C`` pixel table or ``rows`` per-pixel map)."""
    if len(split) == 1 and split[0][1] is None:
        return _take(table_of(split[0][0]), split[0][2])
    out: torch.Tensor | None = None
    for g, pos, rows in split:
        vals = _take(table_of(g), rows)
        if out is None:
            out = vals.new_empty((n, *vals.shape[1:]))
        out.index_copy_(0, pos, vals)
    if out is None:
        raise ValueError("no codes to gather")
    return out


def _take(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows of a pixel table (embedding) or entries of a per-pixel map (``index_select``:
    4x faster than indexing with a tensor)."""
    return F.embedding(rows, table) if table.dim() == 2 else table.index_select(0, rows)


def _frames_in(index: np.ndarray) -> set[int]:
    """Frame ids the source codes of ``index`` (non-negative) point into."""
    if index.size == 0:
        return set()
    ids = index >> (_ROW_BITS + 2)
    low = int(ids.min())
    return set((np.flatnonzero(np.bincount((ids - low).ravel())) + low).tolist())


def map_key(x: BlockTensor) -> MapKey:
    return x.level.bf, tuple(x.level.ext[FULL]), int(x.shape[1])


class ReuseContext:
    """One frame's access to the cache: completes maps with REUSE blocks, records its own."""

    def __init__(self, frame: Frame, previous: FeatureCache | None, motion: MotionField | None,
                 track_full: bool = False) -> None:
        if frame.reused and (previous is None or previous.grid != frame.grid or motion is None):
            raise CacheMissError("REUSE blocks need a cache of the same frame size and a "
                                 "motion field")
        if previous is not None and previous.grid != frame.grid:
            previous = None
        self.frame = frame
        self.previous = previous
        self.motion = motion
        self.frame_id = previous.frame_id + 1 if previous is not None else 0
        self.ops: list[OpMaps] = []
        self.indexes: dict[LevelKey, np.ndarray] = {}
        self._reuse_codes: dict[LevelKey, torch.Tensor] = {}
        self._op_of: dict[int, OpMaps] = {}  # id of a completed map -> its recorded op
        self._moved: dict[LevelKey, np.ndarray] = {}  # level -> moved flat positions
        self.track_full = track_full
        self._full_index: tuple[LevelKey, np.ndarray] | None = None

    def complete(self, x: BlockTensor) -> BlockTensor:
        """``x`` with its REUSE blocks attached (``x.reused``); its map recorded."""
        if x.completed is not None:
            return x.completed
        key = map_key(x)
        k = len(self.ops)
        op = OpMaps(key, {})
        if self.previous is not None:
            before = self._previous_op(k, key)
            op.tables.update(before.tables)
            op.reduced.update(before.reduced)
        tables = op.tables
        tables[self.frame_id] = {p: pixel_table(t) for p, t in x.parts.items()}
        self.ops.append(op)
        level_key = key[:2]
        codes = self._codes_of_reused(level_key)
        if codes is None:
            done = x
        else:
            done = BlockTensor(x.level, x.parts)
            done.reused = ReusedBlocks(codes, tables, self.frame.counts[REUSE], key[0], key[2],
                                       op)
        x.completed = done
        self._op_of[id(done)] = op
        return done

    def record_reduced(self, x: BlockTensor, path: int, maps: tuple[torch.Tensor, ...]) -> None:
        """This frame's reduction of the completed output ``x``'s ``path`` part (maps in the
        rows of its table), for later frames' REUSE pixels."""
        op = self._op_of.get(id(x))
        if op is not None:
            op.reduced.setdefault(self.frame_id, {})[path] = tuple(m.reshape(-1) for m in maps)

    def replace_low_output(self, x: BlockTensor, low_map: torch.Tensor) -> None:
        """Later frames read ``low_map`` (``n x C x bf/2 x bf/2``) for the completed output
        ``x``'s LOW blocks: the fused output, not the plain LOW one."""
        op = self._op_of.get(id(x))
        if op is not None:
            op.tables[self.frame_id][LOW] = pixel_table(low_map)

    def moved_full(self, x: BlockTensor, path: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """For the ``path`` blocks of the completed output ``x``: the output of the last FULL
        computation of what they show, moved here (``n x C x bf x bf``), where one exists
        (``n x 1 x bf x bf`` valid mask) and how many frames ago (same shape). None when no
        pixel has one."""
        op = self._op_of.get(id(x))
        if op is None or not self.track_full:
            return None
        level_key = op.key[:2]
        bf, c = op.key[0], op.key[2]
        index = self._full(level_key)
        g = self.frame.grid
        gy, gx = (t.numpy() for t in self.frame.block_coords_cpu(path))
        cells = index.reshape(g.rows, bf, g.cols, bf)[gy, :, gx, :]
        valid = cells >= 0
        if not valid.any():
            return None
        codes_np = np.where(valid, cells, cells[valid][0])
        codes = torch.from_numpy(np.ascontiguousarray(codes_np).ravel()).to(self.frame.device)
        values = _gather(split_by_source(codes), codes.numel(),
                         lambda grp: op.tables[grp >> 2][FULL])
        n = gy.size
        moved = values.view(n, bf, bf, c).permute(0, 3, 1, 2)
        mask = torch.from_numpy(valid).to(moved.device, moved.dtype)[:, None]
        age = self.frame_id - (codes_np >> (_ROW_BITS + 2))
        age_t = torch.from_numpy(age.astype(np.float32)).to(moved.device, moved.dtype)[:, None]
        return moved * mask, mask, age_t

    def replay(self) -> ReusedBlocks:
        """All blocks REUSE: nothing runs; every index moves. Returns the output map's blocks."""
        if self.previous is None or not self.previous.ops:
            raise CacheMissError("the cache is empty")
        for op in self.previous.ops:
            self.ops.append(op)
        last = self.ops[-1]
        codes = self._codes_of_reused(last.key[:2])
        assert codes is not None
        return ReusedBlocks(codes, last.tables, self.frame.counts[REUSE], last.key[0],
                            last.key[2], last)

    def cache(self) -> FeatureCache:
        """What this frame leaves for the next: tables of the frames its indexes point into."""
        for level_key in {op.key[:2] for op in self.ops}:
            self._index(level_key)
        live: set[int] = set()
        for index in self.indexes.values():
            live.update(_frames_in(index))
        full_live: set[int] = set()
        if self.track_full and self.ops:
            full = self._full(self.ops[-1].key[:2])
            full_live = _frames_in(full[full >= 0])
        ops = tuple(OpMaps(op.key, {f: t for f, t in op.tables.items()
                                    if f in live or (f in full_live and op is self.ops[-1])},
                           {f: r for f, r in op.reduced.items() if f in live})
                    for op in self.ops)
        if (live | full_live) - {self.frame_id}:  # older frames held: keep only rows in use
            ops = compact(ops, self.indexes, self._full_index, self.frame_id, _ROW_BITS)
        return FeatureCache(self.frame.grid, self.frame_id, ops, dict(self.indexes),
                            self._full_index)

    def _previous_op(self, k: int, key: MapKey) -> OpMaps:
        ops = self.previous.ops if self.previous is not None else ()
        if k >= len(ops) or ops[k].key != key:
            if not self.frame.reused:  # nothing to reuse: start a fresh cache
                self.previous = None
                return OpMaps(key, {})
            raise CacheMissError(f"no cached map for op {k} with (block, extent, channels) "
                                 f"{key}")
        return ops[k]

    def _codes_of_reused(self, level_key: LevelKey) -> torch.Tensor | None:
        """Source codes of the REUSE pixels of a level, in REUSE-block order (None: none)."""
        if not self.frame.reused:
            return None
        codes = self._reuse_codes.get(level_key)
        if codes is None:
            bf = level_key[0]
            index = self._index(level_key)
            g = self.frame.grid
            gy, gx = self.frame.block_coords_cpu(REUSE)
            cells = index.reshape(g.rows, bf, g.cols, bf)[gy.numpy(), :, gx.numpy(), :]
            codes = torch.from_numpy(np.ascontiguousarray(cells).ravel()).to(self.frame.device)
            self._reuse_codes[level_key] = codes
        return codes

    def _index(self, level_key: LevelKey) -> np.ndarray:
        """The level's source index for this frame (built on first use)."""
        index = self.indexes.get(level_key)
        if index is not None:
            return index
        bf = level_key[0]
        frame = self.frame
        g = frame.grid
        grid4 = np.empty((g.rows, bf, g.cols, bf), np.int64)
        for p in frame.present:
            self._own_rows(grid4, p, bf)
        if frame.reused:
            prev_index = self.previous.indexes.get(level_key) if self.previous else None
            if prev_index is None:
                raise CacheMissError(f"no source index for level {level_key}")
            self._move(grid4, prev_index, REUSE, level_key)
        index = self.indexes[level_key] = grid4.reshape(g.rows * bf, g.cols * bf)
        return index

    def _full(self, level_key: LevelKey) -> np.ndarray:
        """The level's last-FULL index: like the source index, but LOW and REUSE pixels take
        the previous last-FULL index at the position they moved from; -1: none yet."""
        if self._full_index is not None and self._full_index[0] == level_key:
            return self._full_index[1]
        bf = level_key[0]
        frame = self.frame
        g = frame.grid
        grid4 = np.full((g.rows, bf, g.cols, bf), -1, np.int64)
        if FULL in frame.present:
            self._own_rows(grid4, FULL, bf)
        previous = self.previous.full_index if self.previous is not None else None
        if previous is not None and previous[0] == level_key and self.motion is not None:
            for p, here in ((LOW, LOW in frame.present), (REUSE, frame.reused)):
                if here:
                    self._move(grid4, previous[1], p, level_key)
        index = grid4.reshape(g.rows * bf, g.cols * bf)
        self._full_index = (level_key, index)
        return index

    def _own_rows(self, grid4: np.ndarray, path: int, bf: int) -> None:
        """Point the ``path`` blocks of ``grid4`` (rows x bf x cols x bf) at their own rows
        of this frame's table (LOW pixels: the half-resolution pixel they lie in)."""
        gy, gx = (t.numpy() for t in self.frame.block_coords_cpu(path))
        ar = np.arange(bf)
        slot = np.arange(gy.size)[:, None, None]
        if path == LOW:
            b2 = bf // 2
            rows = slot * (b2 * b2) + (ar // 2)[None, :, None] * b2 + (ar // 2)[None, None, :]
        else:
            rows = slot * (bf * bf) + ar[None, :, None] * bf + ar[None, None, :]
        grid4[gy, :, gx, :] = encode(self.frame_id, path, rows)

    def _move(self, grid4: np.ndarray, previous: np.ndarray, path: int, level_key: LevelKey
              ) -> None:
        """The ``path`` blocks of ``grid4`` take ``previous`` (the last frame's index) at
        the positions the motion says their pixels came from."""
        g = self.frame.grid
        bf = level_key[0]
        sources = self._moved_sources(level_key).reshape(g.rows, bf, g.cols, bf)
        if self.frame.counts[path] == g.rows * g.cols:  # every block: one flat gather
            previous.ravel().take(sources, out=grid4)
            return
        gy, gx = (t.numpy() for t in self.frame.block_coords_cpu(path))
        grid4[gy, :, gx, :] = previous.ravel().take(sources[gy, :, gx, :])

    def _moved_sources(self, level_key: LevelKey) -> np.ndarray:
        """For every pixel of a level's map (``rows*bf x cols*bf``): the flat position in the
        previous frame's map of the pixel the motion says it came from (nearest pixel).

        Computed once per level for the whole map, rows and columns of the coarse flow taken
        as slices: 5x faster than gathering the flow per pixel of the moved blocks only."""
        sources = self._moved.get(level_key)
        if sources is not None:
            return sources
        motion = self.motion
        assert motion is not None
        bf, extent = level_key
        g = self.frame.grid
        width = g.cols * bf
        sources = motion_sources(motion, g.rows * bf, width, g.block_size / bf, extent)
        self._moved[level_key] = sources
        return sources
