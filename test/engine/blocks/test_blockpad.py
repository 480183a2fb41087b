"""BlockPad halos against a per-pixel reference of the neighbour rules."""

from __future__ import annotations

import math

import pytest
import torch

from seg_accel_ros.engine.blocks import blockpad
from seg_accel_ros.engine.blocks.blockpad import pad_blocks, past_extent
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import FULL, LOW, Frame
from seg_accel_ros.engine.blocks.tensor import BlockTensor


def _reference(x: BlockTensor, path: int, h: int, mode: str, value: float) -> torch.Tensor:
    """Each halo pixel looked up by the rules: same path copy, FULL<-LOW nearest, LOW<-FULL
    2x2 mean, outside the valid extent ``value`` (constant) or the clamped pixel (replicate)."""
    level = x.level
    frame = level.frame
    b = level.block(path)
    hv, wv = level.ext[path]
    rows, cols = frame.grid.shape
    slot = {}
    for p, cells in frame.cells_cpu.items():
        for i, c in enumerate(cells.tolist()):
            slot[c] = (p, i)
    n, c = x.parts[path].shape[:2]
    out = torch.empty(n, c, b + 2 * h, b + 2 * h)
    for i, cell in enumerate(frame.cells_cpu[path].tolist()):
        gy, gx = divmod(cell, cols)
        for u in range(b + 2 * h):
            for v in range(b + 2 * h):
                yy, xx = gy * b - h + u, gx * b - h + v
                if mode == "replicate":
                    yy, xx = min(max(yy, 0), hv - 1), min(max(xx, 0), wv - 1)
                elif not (0 <= yy < hv and 0 <= xx < wv):
                    out[i, :, u, v] = value
                    continue
                q, j = slot[(yy // b) * cols + xx // b]
                ly, lx = yy % b, xx % b
                src = x.parts[q][j]
                if q == path:
                    out[i, :, u, v] = src[:, ly, lx]
                elif path == FULL:
                    out[i, :, u, v] = src[:, ly // 2, lx // 2]
                else:
                    out[i, :, u, v] = src[:, 2 * ly:2 * ly + 2, 2 * lx:2 * lx + 2].mean((1, 2))
    return out


def _block_tensor(paths: torch.Tensor, bf: int, ext_full: tuple[int, int], seed: int
                  ) -> BlockTensor:
    rows, cols = paths.shape
    grid = BlockGrid(rows * 16 - 3, cols * 16 - 5, 16)
    frame = Frame(grid, paths, torch.device("cpu"))
    ext_low = (math.ceil(ext_full[0] / 2), math.ceil(ext_full[1] / 2))
    level = frame.level(bf, ext_full, ext_low)
    g = torch.Generator().manual_seed(seed)
    parts = {p: torch.randn(frame.counts[p], 2, level.block(p), level.block(p), generator=g)
             for p in frame.present}
    return BlockTensor(level, parts)


PATH_MAPS = {
    "mixed": torch.tensor([[2, 1, 1, 2], [1, 2, 2, 1], [2, 2, 1, 1]]),
    "full": torch.full((3, 4), FULL),
    "low": torch.full((3, 4), LOW),
    "one_full": torch.tensor([[1, 1, 1, 1], [1, 1, 2, 1], [1, 1, 1, 1]]),
}


@pytest.mark.parametrize("mode, value", [("constant", 0.0), ("constant", -math.inf),
                                         ("replicate", 0.0)])
@pytest.mark.parametrize("halo", [1, 2, 3, 8, 11])  # 8 = a whole LOW block, 11 > any block
@pytest.mark.parametrize("paths", list(PATH_MAPS), ids=str)
def test_halo_follows_neighbour_rules(paths, halo, mode, value):
    # FULL blocks 8 px, LOW 4 px; valid extent ends inside the last block row and column.
    x = _block_tensor(PATH_MAPS[paths], 8, (21, 29), seed=halo)
    for path in x.parts:
        got = pad_blocks(x, path, halo, halo, mode, value)
        want = _reference(x, path, halo, mode, value)
        assert got.shape == want.shape
        assert torch.equal(got, want) or torch.allclose(got, want, atol=1e-6), (path, halo)


def test_frames_of_one_size_share_the_geometry_not_the_plan():
    """The paths change from frame to frame; where each padded pixel sits does not."""
    blockpad._window_geometry.cache_clear()
    for seed, paths in enumerate(("mixed", "one_full", "mixed")):
        x = _block_tensor(PATH_MAPS[paths], 8, (21, 29), seed=seed)
        for path in x.parts:
            want = _reference(x, path, 2, "constant", 0.0)
            assert torch.allclose(pad_blocks(x, path, 2, 2), want, atol=1e-6), (paths, path)
    info = blockpad._window_geometry.cache_info()
    assert (info.currsize, info.hits) == (2, 4)  # one per block size, then only hits


def test_asymmetric_halo_and_zero_halo():
    x = _block_tensor(PATH_MAPS["mixed"], 8, (24, 32), seed=0)
    for path in x.parts:
        assert pad_blocks(x, path, 0, 0) is x.parts[path]
        got = pad_blocks(x, path, 2, 0)
        full = _reference(x, path, 2, "constant", 0.0)
        assert torch.allclose(got, full[:, :, :, 2:-2], atol=1e-6)


def test_unknown_mode_is_rejected():
    x = _block_tensor(PATH_MAPS["full"], 8, (24, 32), seed=0)
    with pytest.raises(ValueError, match="pad mode"):
        pad_blocks(x, FULL, 1, 1, mode="reflect")


def test_past_extent_groups_the_blocks_the_valid_extent_ends_in():
    # FULL blocks 8 px on a 3 x 4 grid, extent 21 x 29: it ends 5 px into the last block row
    # and 5 px into the last block column; LOW blocks (4 px, extent 11 x 15) 3 px into them.
    x = _block_tensor(PATH_MAPS["mixed"], 8, (21, 29), seed=0)
    frame = x.level.frame
    for path, first in ((FULL, 5), (LOW, 3)):
        gy, gx = frame.block_coords_cpu(path)
        groups = {(g.dim, g.first): g.blocks.tolist() for g in past_extent(x.level, path)}
        assert groups == {(2, first): (gy == 2).nonzero().flatten().tolist(),
                          (3, first): (gx == 3).nonzero().flatten().tolist()}


def test_past_extent_lists_whole_blocks_past_it():
    x = _block_tensor(PATH_MAPS["full"], 8, (10, 32), seed=0)  # rows 16-23: all past
    gy, _ = x.level.frame.block_coords_cpu(FULL)
    groups = {(g.dim, g.first): g.blocks.tolist() for g in past_extent(x.level, FULL)}
    assert groups == {(2, 2): (gy == 1).nonzero().flatten().tolist(),
                      (2, 0): (gy == 2).nonzero().flatten().tolist()}
