"""Bilinear resizing to another level's odd size (a decoder upsampling to its skip connection:
``23 -> 45``) runs block-wise, each path at its own resolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import FULL, LOW, Frame, Level
from seg_accel_ros.engine.blocks.ops import resample
from seg_accel_ros.engine.blocks.ops.resample import upsample_path, upsampled_maps
from seg_accel_ros.engine.blocks.tensor import FALLBACKS, BlockTensor
from seg_accel_ros.engine.result import PixelReduction, pixel_labels, pixel_maps

PATHS = torch.tensor([[FULL, LOW, LOW, FULL],
                      [LOW, FULL, LOW, LOW],
                      [FULL, FULL, LOW, FULL]])


def _levels(paths: torch.Tensor) -> tuple[Frame, Level, Level]:
    """A frame of 16-px blocks with a 1/4 level of 11 x 15 and a 1/2 level of 21 x 29 (LOW:
    6 x 8 and 11 x 15): a 2x upsampling whose sizes are no multiples."""
    rows, cols = paths.shape
    frame = Frame(BlockGrid(rows * 16 - 6, cols * 16 - 3, 16), paths, torch.device("cpu"))
    return frame, frame.level(4, (11, 15), (6, 8)), frame.level(8, (21, 29), (11, 15))


def _random_blocks(level: Level, seed: int) -> BlockTensor:
    g = torch.Generator().manual_seed(seed)
    frame = level.frame
    return BlockTensor(level, {
        p: torch.randn(frame.counts[p], 3, level.block(p), level.block(p), generator=g)
        .contiguous(memory_format=torch.channels_last) for p in frame.present})


def _path_map(x: BlockTensor, path: int) -> torch.Tensor:
    """The level's map at ``path``'s resolution by the BlockPad rules (FULL <- LOW nearest,
    LOW <- FULL 2x2 mean), cropped to its valid extent: ``1 x C x h x w``."""
    level = x.level
    frame = level.frame
    b = level.block(path)
    rows, cols = frame.grid.shape
    canvas = torch.zeros(1, x.shape[1], rows * b, cols * b)
    for q, part in x.parts.items():
        if q != path:
            part = (F.interpolate(part, scale_factor=2, mode="nearest") if path == FULL
                    else F.avg_pool2d(part, 2))
        for block, cell in zip(part, frame.cells_cpu[q].tolist(), strict=True):
            gy, gx = divmod(cell, cols)
            canvas[0, :, gy * b:(gy + 1) * b, gx * b:(gx + 1) * b] = block
    h, w = level.ext[path]
    return canvas[:, :, :h, :w]


@pytest.mark.parametrize("paths", [PATHS, torch.full((3, 4), FULL), torch.full((3, 4), LOW)],
                         ids=("mixed", "full", "low"))
def test_each_block_is_its_paths_map_resized(paths):
    frame, src, dst = _levels(paths)
    x = _random_blocks(src, seed=3)
    before = FALLBACKS.copy()
    out = F.interpolate(x, size=dst.logical, mode="bilinear", align_corners=False)
    assert not FALLBACKS - before  # no dense fallback
    assert isinstance(out, BlockTensor) and out.level is dst
    rows, cols = frame.grid.shape
    for path, part in out.parts.items():
        expected = F.interpolate(_path_map(x, path), size=dst.ext[path], mode="bilinear",
                                 align_corners=False)[0]
        b = dst.block(path)
        h, w = dst.ext[path]
        for block, cell in zip(part, frame.cells_cpu[path].tolist(), strict=True):
            gy, gx = divmod(cell, cols)
            y0, x0 = gy * b, gx * b
            valid = block[:, : max(0, min(b, h - y0)), : max(0, min(b, w - x0))]
            want = expected[:, y0:y0 + valid.shape[1], x0:x0 + valid.shape[2]]
            assert (valid - want).abs().max().item() <= 1e-5, (path, cell)


def test_a_size_that_is_no_levels_runs_densely_and_is_counted():
    _, src, _ = _levels(PATHS)
    x = _random_blocks(src, seed=4)
    before = FALLBACKS.copy()
    out = F.interpolate(x, size=(17, 19), mode="bilinear", align_corners=False)
    assert (FALLBACKS - before)["interpolate"] == 1
    assert tuple(out.shape[-2:]) == (17, 19)


def _frame_of_32px_blocks(paths: torch.Tensor) -> Level:
    """A full-resolution level of 32-px blocks (LOW blocks 16 px, upsampled by the ring
    strategy) whose valid extent ends inside the last row and column of blocks."""
    rows, cols = paths.shape
    frame = Frame(BlockGrid(rows * 32 - 7, cols * 32 - 5, 32), paths, torch.device("cpu"))
    h, w = frame.grid.height, frame.grid.width
    return frame.level(32, (h, w), (-(-h // 2), -(-w // 2)))


@pytest.mark.parametrize("paths", [PATHS, torch.full((3, 4), LOW)], ids=("mixed", "low"))
def test_upsampled_maps_chunk_by_chunk_equal_the_whole_batch_reduced(paths, monkeypatch):
    level = _frame_of_32px_blocks(paths)
    x = _random_blocks(level, seed=5)
    whole = pixel_maps(upsample_path(x, LOW, 2, "bilinear"), confidence=True)
    monkeypatch.setattr(resample, "UPSAMPLE_CHUNK_PIXELS", 3 * 36 * 36)  # chunks of 3 blocks
    chunks = list(upsampled_maps(x, LOW, 2, lambda t: pixel_maps(t, confidence=True)))
    assert len(chunks) == -(-level.frame.counts[LOW] // 3)
    labels = torch.cat([maps[0] for _, maps in chunks])
    confidence = torch.cat([maps[1] for _, maps in chunks])
    assert torch.equal(labels, whole[0])
    torch.testing.assert_close(confidence, whole[1], rtol=1e-6, atol=1e-6)
    assert [sel.start for sel, _ in chunks] == list(range(0, level.frame.counts[LOW], 3))


def _patchy_blocks(level: Level, seed: int, classes: int = 4) -> BlockTensor:
    """Logits whose argmax is constant over 4 x 4 patches (plus a little noise): large
    uniform regions and class borders, as a network's output has."""
    g = torch.Generator().manual_seed(seed)
    frame = level.frame
    parts = {}
    for p in frame.present:
        b = level.block(p)
        coarse = torch.randn(frame.counts[p], classes, b // 4, b // 4, generator=g)
        fine = F.interpolate(coarse, scale_factor=4, mode="nearest")
        parts[p] = (fine + 0.01 * torch.randn(fine.shape, generator=g)).contiguous(
            memory_format=torch.channels_last)
    return BlockTensor(level, parts)


@pytest.mark.parametrize("make", [_patchy_blocks, _random_blocks], ids=("patchy", "noise"))
@pytest.mark.parametrize("paths", [PATHS, torch.full((3, 4), LOW)], ids=("mixed", "low"))
def test_labels_alone_come_from_the_blocks_own_labels_and_equal_the_upsampled_argmax(
        paths, make):
    level = _frame_of_32px_blocks(paths)
    x = make(level, seed=7)
    expected = pixel_labels(upsample_path(x, LOW, 2, "bilinear"))
    (sel, (labels,)), = upsampled_maps(x, LOW, 2, PixelReduction())
    assert sel == slice(None)
    assert torch.equal(labels, expected)


def test_labels_alone_read_only_the_class_channels():
    level = _frame_of_32px_blocks(PATHS)
    x = _patchy_blocks(level, seed=8, classes=5)
    expected = pixel_labels(upsample_path(x, LOW, 2, "bilinear")[:, :3])
    (_, (labels,)), = upsampled_maps(x, LOW, 2, PixelReduction(classes=3))
    assert torch.equal(labels, expected)
    assert int(labels.max()) <= 2
