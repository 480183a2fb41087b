"""BlockPad: the padding a block's convolution / pooling / interpolation reads from its neighbours.

For each block of path P we build ``n x C x (b + 2 hy) x (b + 2 hx)``: the block itself in the
middle and around it a halo taken from the neighbouring blocks by the rules

- neighbour on the same path: its pixels, copied;
- FULL block next to a LOW neighbour: the LOW pixels, nearest-upsampled 2x;
- LOW block next to a FULL neighbour: the FULL pixels, 2x2-averaged;
- outside the image: the op's padding value (``constant`` mode: 0, or -inf for max pooling;
  ``replicate`` mode: the nearest edge pixel, which is what bilinear interpolation clamps to).

"Outside the image" means past the valid extent of the level (see ``layout.Level``), which can
end inside the last row / column of blocks.

How: a channels-last batch is a table of pixels (one row of ``C`` values per pixel). For each
(level, path, halo, mode) a :class:`PadPlan` maps every pixel of the padded batch to its source
row: in P's own table (the block itself, same-path neighbours, and nearest-upsampled pixels are
just repeated indices), in the other path's table (FULL<-LOW), four rows to average (LOW<-FULL),
or a constant. One row gather then builds the padded batch, whatever the halo width (halos wider
than a block simply reach the next block but one). Plans are computed once per frame with
vectorised index arithmetic and shared by all layers of a level; their geometry (which cell and
pixel each padded pixel reads, whatever the paths) once per frame size.

A plan can also cover only a window of the padded batch (``rows`` / ``cols``): the halo strips
that ``ops/windowed.py`` uses to fix up the border of an op run on the bare blocks.

REUSE blocks have no computed batch: their features come from the temporal cache
(``reuse.py``), read row by row through ``x.reused`` only where a plan needs them; to FULL
blocks they are same-resolution neighbours, to LOW blocks full-resolution ones (2x2-averaged).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.gather import channels_last
from seg_accel_ros.engine.blocks.layout import FULL, REUSE, Level, resolution
from seg_accel_ros.engine.blocks.tensor import BlockTensor

PAD_MODES = ("constant", "replicate")


@dataclass(frozen=True)
class PadPlan:
    """Source of every pixel of a padded window of ``n`` blocks (flattened n, rows, cols)."""

    shape: tuple[int, int, int]  # n, rows, cols of the window
    main: torch.Tensor  # row in P's pixel table (0 where another source applies)
    # (path q, pixels taken from q's table, their rows there (4 x m for 2x2 averages))
    sources: tuple[tuple[int, torch.Tensor, torch.Tensor], ...]
    fill_pos: torch.Tensor | None  # pixels that take the constant padding value


def pixel_table(x: torch.Tensor) -> torch.Tensor:
    """``n x C x h x w`` batch -> ``(n*h*w) x C`` rows (a view for channels-last batches)."""
    x = channels_last(x)
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


@functools.lru_cache(maxsize=128)  # 720p with 128-px blocks: 53 windows, 13 MB
def _window_geometry(grid: tuple[int, int], b: int, ext: tuple[int, int], hy: int, hx: int,
                     mode: str, rows: tuple[int, int], cols: tuple[int, int]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Where each pixel of a window of every cell's padded block comes from, whatever the
    paths: (source cell, pixel in it (row * b + column), inside the valid extent (None:
    replicate mode)), each ``cells x rows x cols``. It depends on the frame's size only, so
    frames of one size share it (about half of a plan's arithmetic)."""
    grid_rows, grid_cols = grid
    cells = np.arange(grid_rows * grid_cols)
    gy, gx = cells // grid_cols, cells % grid_cols
    shape = (cells.size, rows[1] - rows[0], cols[1] - cols[0])
    yy = (gy * b - hy)[:, None, None] + np.arange(rows[0], rows[1])[None, :, None]
    xx = (gx * b - hx)[:, None, None] + np.arange(cols[0], cols[1])[None, None, :]
    hv, wv = ext
    if mode == "replicate":
        yy, xx = yy.clip(0, hv - 1), xx.clip(0, wv - 1)
        valid = None
    else:
        valid = np.broadcast_to(((yy >= 0) & (yy < hv)) & ((xx >= 0) & (xx < wv)), shape).copy()
    yy = yy.clip(0, grid_rows * b - 1)
    xx = xx.clip(0, grid_cols * b - 1)
    cy, cx = yy // b, xx // b
    local = ((yy - cy * b) * b + (xx - cx * b)).astype(np.int32)
    cell = np.broadcast_to(cy * grid_cols + cx, shape).astype(np.int32)
    for a in (cell, local, valid):
        if a is not None:
            a.flags.writeable = False
    return cell, local, valid


def _build_plan(level: Level, path: int, hy: int, hx: int, mode: str,
                rows: tuple[int, int], cols: tuple[int, int], subset: np.ndarray | None
                ) -> PadPlan:
    # NumPy: these are many small index computations per frame, where torch's per-call
    # overhead would dominate.
    frame = level.frame
    b = level.block(path)
    cells = frame.cells_np[path] if subset is None else frame.cells_np[path][subset]
    geometry = _window_geometry(frame.grid.shape, b, tuple(level.ext[path]), hy, hx, mode,
                                rows, cols)
    cell, local, valid = (None if a is None else a[cells] for a in geometry)
    n, nr, nc = cell.shape
    src_path = frame.path_np[cell]
    src_slot = frame.slot_np[cell]
    same = src_path == path
    if valid is not None:
        same &= valid
    main = np.where(same, src_slot * (b * b) + local, 0).ravel()
    sources = []
    fill_pos = None
    others = [q for q in frame.cells_np if q != path]
    if others:
        taken = (~same if valid is None else valid & ~same).ravel()
        src_flat = src_path.ravel()
        for q in others:
            pos = np.flatnonzero(taken & (src_flat == q))
            if not pos.size:
                continue
            slot_o, local_o = src_slot.ravel()[pos], local.ravel()[pos]
            if resolution(q) == resolution(path):  # same resolution: copy
                idx = slot_o * (b * b) + local_o
            elif path == FULL:  # nearest upsampling of the LOW neighbour
                bq = b // 2
                idx = slot_o * (bq * bq) + (local_o // b // 2) * bq + local_o % b // 2
            else:  # 2x2 average of the full-resolution neighbour
                bq = 2 * b
                base = slot_o * (bq * bq) + (local_o // b) * (2 * bq) + 2 * (local_o % b)
                idx = np.stack((base, base + 1, base + bq, base + bq + 1))
            sources.append((q, pos, idx))
    if valid is not None:
        pos = np.flatnonzero(~valid)
        fill_pos = pos if pos.size else None
    dev = frame.device

    def to(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a, np.int64)).to(dev)

    return PadPlan((n, nr, nc), to(main), tuple((q, to(p), to(i)) for q, p, i in sources),
                   to(fill_pos))


def pad_plan(level: Level, path: int, hy: int, hx: int, mode: str = "constant",
             rows: tuple[int, int] | None = None, cols: tuple[int, int] | None = None,
             edge_only: bool = False, past: tuple[int, int] | None = None) -> PadPlan:
    """The (cached) plan for rows / cols (default: all) of ``path``'s padded blocks.

    ``edge_only``: only the blocks that reach past the valid extent (see :func:`edge_blocks`);
    ``past``: only those of one of :func:`past_extent`'s groups, ``(dim, first)``.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
    b = level.block(path)
    rows = rows or (0, b + 2 * hy)
    cols = cols or (0, b + 2 * hx)
    key = ("pad", path, hy, hx, mode, rows, cols, edge_only, past)
    plan = level.cache.get(key)
    if plan is None:
        subset = None
        if edge_only:
            subset = edge_blocks(level, path)[0].numpy()
        elif past is not None:
            subset = next(g.blocks for g in past_extent(level, path)
                          if (g.dim, g.first) == past).numpy()
        plan = level.cache[key] = _build_plan(level, path, hy, hx, mode, rows, cols, subset)
    return plan


@dataclass(frozen=True)
class PastExtent:
    """Blocks of one path whose valid extent ends at the same pixel of one dimension."""

    dim: int  # 2: rows, 3: columns (of the ``n x C x b x b`` batch)
    first: int  # their first pixel past the valid extent (0: the whole block)
    blocks: torch.Tensor  # their positions in the path's batch, on the CPU
    blocks_dev: torch.Tensor  # the same, on the device


def past_extent(level: Level, path: int) -> tuple[PastExtent, ...]:
    """``path``'s blocks that reach past the level's valid extent, grouped by dimension and
    by where the extent ends in them (cached on the level)."""
    key = ("past", path)
    found = level.cache.get(key)
    if found is None:
        b = level.block(path)
        groups = []
        for dim, g, e in zip((2, 3), level.frame.block_coords_cpu(path), level.ext[path],
                             strict=True):
            first = (e - g * b).clamp(0, b)
            for f in first.unique().tolist():
                if f < b:
                    pos = (first == f).nonzero().flatten()
                    groups.append(PastExtent(dim, f, pos, pos.to(level.frame.device)))
        found = level.cache[key] = tuple(groups)
    return found


def edge_blocks(level: Level, path: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Positions in ``path``'s batch of the blocks whose own pixels reach past the valid
    extent: (on the CPU, on the device or None when there are none)."""
    key = ("edge", path)
    found = level.cache.get(key)
    if found is None:
        groups = past_extent(level, path)
        pos = (torch.cat([g.blocks for g in groups]).unique() if groups
               else torch.empty(0, dtype=torch.long))
        found = level.cache[key] = (pos, pos.to(level.frame.device) if pos.numel() else None)
    return found


def gather_padded(x: BlockTensor, path: int, plan: PadPlan, value: float = 0.0,
                  out: torch.Tensor | None = None,
                  tables: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
    """Execute ``plan`` on ``x``: a channels-last ``n x C x rows x cols`` batch.

    ``out``: optional flat buffer with room for the result (avoids an allocation).
    ``tables``: the parts' :func:`pixel_table` when several plans run on the same tensor.
    """
    src = x.parts[path]
    c = src.shape[1]
    n, h, w = plan.shape
    if out is None:
        out2d = torch.empty((n * h * w, c), dtype=src.dtype, device=src.device)
    else:
        out2d = out[: n * h * w * c].view(n * h * w, c)
    table = tables[path] if tables else pixel_table(src)
    torch.index_select(table, 0, plan.main, out=out2d)
    for q, pos, idx in plan.sources:
        if q == REUSE:
            vals = x.reused.rows(idx)
        else:
            vals = F.embedding(idx, tables[q] if tables else pixel_table(x.parts[q]))
        out2d.index_copy_(0, pos, vals.mean(0) if idx.dim() == 2 else vals)
    if plan.fill_pos is not None:
        out2d.index_fill_(0, plan.fill_pos, value)
    return out2d.view(n, h, w, c).permute(0, 3, 1, 2)


def pad_blocks(x: BlockTensor, path: int, hy: int, hx: int, mode: str = "constant",
               value: float = 0.0, scratch: bool = True) -> torch.Tensor:
    """``path``'s blocks of ``x`` with a halo of ``hy`` rows and ``hx`` columns on each side.

    With ``scratch`` the result lives in the frame's scratch buffer: use it before the next
    call that uses the scratch.
    """
    if hy == 0 and hx == 0:
        return x.parts[path]
    plan = pad_plan(x.level, path, hy, hx, mode)
    buf = None
    if scratch:
        n, h, w = plan.shape
        src = x.parts[path]
        buf = x.level.frame.scratch.flat(n * h * w * src.shape[1], src)
    return gather_padded(x, path, plan, value, buf)
