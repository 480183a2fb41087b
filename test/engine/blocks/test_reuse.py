"""REUSE blocks read the temporal feature cache (issue 5): with the same frame and no motion
they reproduce what was computed, under a known translation they reproduce the moved result,
and computed neighbours read REUSE halos as they read FULL ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.layout import Frame
from seg_accel_ros.engine.blocks.reuse import (
    CacheMissError,
    MotionField,
    ReuseContext,
    motion_sources,
    split_by_source,
)
from seg_accel_ros.engine.result import BlockPath

NETS = ("resnet_like", "unet_like", "swiftnet_lite0", "cgnet", "espnet")
SIZE = (256, 384)
TOL = 1e-4
R, L, F_ = int(BlockPath.REUSE), int(BlockPath.LOW), int(BlockPath.FULL)



def _engine(make_net, name, global_modules) -> BlockEngine:
    return BlockEngine(make_net(name), 128, global_modules.get(name))


def _keyframe(engine: BlockEngine, x: torch.Tensor):
    grid = engine.grid(*SIZE)
    with torch.inference_mode():
        out = engine.model(x, grid.uniform(BlockPath.FULL), temporal=(None, None))
    return out, engine.model.last_cache


@pytest.mark.parametrize("name", NETS)
def test_all_reuse_of_the_same_frame_gives_the_cached_output(name, make_net, make_image,
                                                             global_modules):
    engine = _engine(make_net, name, global_modules)
    x = make_image(SIZE, torch.Generator().manual_seed(1))
    first, cache = _keyframe(engine, x)
    with torch.inference_mode():
        again = engine.model(x, engine.grid(*SIZE).uniform(BlockPath.REUSE),
                             temporal=(cache, MotionField.still(*SIZE)))
    assert (again - first).abs().max().item() <= TOL


@pytest.mark.parametrize("name", NETS)
def test_reuse_next_to_full_is_exact_on_the_same_frame(name, make_net, make_image,
                                                       global_modules):
    """REUSE halos are the cached features: FULL blocks beside REUSE ones compute exactly
    what they compute beside FULL ones."""
    engine = _engine(make_net, name, global_modules)
    x = make_image(SIZE, torch.Generator().manual_seed(2))
    first, cache = _keyframe(engine, x)
    paths = torch.tensor([[F_, R, F_], [R, F_, R]])
    with torch.inference_mode():
        mixed = engine.model(x, paths, temporal=(cache, MotionField.still(*SIZE)))
    assert (mixed - first).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ("resnet_like", "unet_like", "swiftnet_lite0"))
def test_reuse_under_integer_translation_moves_the_output(name, make_net, make_image,
                                                          global_modules):
    """A translation by (16, 32) input pixels, a multiple of every stride: REUSE outputs are
    the previous outputs moved, away from the border the content entered through."""
    dy, dx = 32, 64
    engine = _engine(make_net, name, global_modules)
    x = make_image(SIZE, torch.Generator().manual_seed(4))
    first, cache = _keyframe(engine, x)
    shifted = torch.zeros_like(x)
    shifted[..., dy:, dx:] = x[..., :-dy, :-dx]
    flow = torch.tensor([-dx, -dy], dtype=torch.float32).expand(SIZE[0] // 4, SIZE[1] // 4, 2)
    motion = MotionField(flow.numpy().copy(), 4.0)
    with torch.inference_mode():
        moved = engine.model(shifted, engine.grid(*SIZE).uniform(BlockPath.REUSE),
                             temporal=(cache, motion))
    expected = first[..., :-dy, :-dx]
    assert (moved[..., dy:, dx:] - expected).abs().max().item() <= TOL


@pytest.mark.parametrize("size", ((256, 384), (255, 383)), ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ("swiftnet_lite0", "cgnet", "espnet"))
def test_later_frames_reuse_an_all_low_frame(name, size, make_net, make_image, global_modules):
    """A frame without FULL blocks records the maps that frames with FULL blocks record (a
    declared global module's input included), at the image's size (not twice the
    half-resolution one, which overshoots an odd size): later frames REUSE them."""
    net = make_net(name)
    engine = BlockEngine(net, 128, global_modules.get(name))
    x = make_image(size, torch.Generator().manual_seed(6))
    grid = engine.grid(*size)
    still = MotionField.still(*size)
    with torch.inference_mode():
        low = engine.model(x, grid.uniform(BlockPath.LOW), temporal=(None, None))
        cache = engine.model.last_cache
        again = engine.model(x, grid.uniform(BlockPath.REUSE), temporal=(cache, still))
        mixed = engine.model(x, torch.tensor([[R, F_, R], [F_, R, F_]]), temporal=(cache, still))
        half = net(F.avg_pool2d(F.pad(x, (0, size[1] % 2, 0, size[0] % 2)), 2))
    assert low.shape[-2:] == size
    assert mixed.shape == low.shape
    # REUSE pixels read the cached half-resolution output, nearest-upsampled (BlockPad's rule)
    expected = F.interpolate(half, scale_factor=2, mode="nearest")[..., : size[0], : size[1]]
    inner = (..., slice(2, -2), slice(2, -2))
    assert (again[inner] - expected[inner]).abs().max().item() <= TOL


def test_reuse_needs_a_cache_of_the_same_size(make_net, make_image, global_modules):
    engine = _engine(make_net, "resnet_like", global_modules)
    _, cache = _keyframe(engine, make_image(SIZE, torch.Generator().manual_seed(5)))
    other = make_image((128, 256), torch.Generator().manual_seed(5))
    with pytest.raises(CacheMissError), torch.inference_mode():
        engine.model(other, torch.full((1, 2), R), temporal=(cache, MotionField.still(128, 256)))


def test_reuse_is_refused_outside_temporal_execution(make_net, make_image, global_modules):
    engine = _engine(make_net, "resnet_like", global_modules)
    x = make_image(SIZE, torch.Generator().manual_seed(6))
    with pytest.raises(ValueError, match="REUSE needs the temporal engine"):
        engine.run(x, torch.full((2, 3), R))


def test_cache_holds_only_frames_still_pointed_into(make_net, make_image, global_modules):
    engine = _engine(make_net, "resnet_like", global_modules)
    x = make_image(SIZE, torch.Generator().manual_seed(7))
    _, cache = _keyframe(engine, x)
    still = MotionField.still(*SIZE)
    with torch.inference_mode():
        engine.model(x, torch.tensor([[R, F_, R], [R, R, R]]), temporal=(cache, still))
        assert engine.model.last_cache.frames_held == 2
        engine.model(x, torch.full((2, 3), F_), temporal=(engine.model.last_cache, still))
    assert engine.model.last_cache.frames_held == 1


def _per_pixel_sequence(engine: BlockEngine, x: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Three frames: FULL/LOW, then REUSE of both paths, then all REUSE moved by 32 px (its
    sources span the two earlier frames)."""
    reduce = lambda logits: tuple(t[:, None] for t in (  # noqa: E731
        logits.argmax(1).float(), logits.amax(1)))
    flow = torch.tensor([-32.0, 0.0]).expand(SIZE[0] // 4, SIZE[1] // 4, 2).numpy().copy()
    steps = [(torch.tensor([[F_, L, F_], [L, F_, L]]), MotionField.still(*SIZE)),
             (torch.tensor([[R, F_, L], [L, R, R]]), MotionField.still(*SIZE)),
             (torch.full((2, 3), R), MotionField(flow, 4.0))]
    cache, outs = None, []
    with torch.inference_mode():
        for i, (paths, motion) in enumerate(steps):
            outs.append(engine.model.per_pixel(
                x, paths, lambda t: tuple(m[:, 0] for m in reduce(t)),
                temporal=(cache, motion if i else None)))
            cache = engine.model.last_cache
    return outs


def test_reuse_pixels_take_the_recorded_reductions_of_earlier_frames(make_net, make_image,
                                                                      global_modules,
                                                                      monkeypatch):
    """Labels and confidence of REUSE pixels are gathered from what earlier frames reduced
    their output to, and equal reducing the moved logits (the slower way)."""
    from seg_accel_ros.engine.blocks.reuse import ReusedBlocks

    x = make_image(SIZE, torch.Generator().manual_seed(8))
    taken = []
    original = ReusedBlocks.reduced

    def spy(self):
        out = original(self)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(ReusedBlocks, "reduced", spy)
    fast = _per_pixel_sequence(_engine(make_net, "unet_like", global_modules), x)
    assert taken == [True, True]
    monkeypatch.setattr(ReusedBlocks, "reduced", lambda self: None)
    slow = _per_pixel_sequence(_engine(make_net, "unet_like", global_modules), x)
    for a, b in zip(fast, slow, strict=True):
        assert torch.equal(a[0], b[0])
        assert (a[1] - b[1]).abs().max().item() <= TOL


def test_codes_split_by_the_frame_and_path_they_point_into():
    def code(frame_id: int, path: int, row: int) -> int:
        return (((frame_id << 2) | path) << 32) | row

    codes = torch.tensor([code(7, 2, 5), code(3, 1, 0), code(7, 2, 1), code(900_000, 0, 9)])
    split = split_by_source(codes)
    assert [g for g, _, _ in split] == [(3 << 2) | 1, (7 << 2) | 2, (900_000 << 2) | 0]
    assert [p.tolist() for _, p, _ in split] == [[1], [0, 2], [3]]
    assert [r.tolist() for _, _, r in split] == [[0], [5, 1], [9]]
    (group, pos, rows), = split_by_source(codes[[0, 2]])
    assert (group, pos, rows.tolist()) == ((7 << 2) | 2, None, [5, 1])
    assert split_by_source(codes[:0]) == []


@pytest.mark.parametrize("bf, ext", [(64, (100, 150)), (16, (25, 38)), (2, (4, 5))])
def test_each_pixel_moves_to_the_nearest_pixel_its_flow_points_at(bf, ext):
    """Level pixel (y, x) of ``s`` input pixels takes the flow sample it lies in and comes
    from round((y, x) + flow / s), clamped to the level's valid extent (half-pixel flows,
    the rounding ties, included)."""
    rng = np.random.default_rng(1)
    grid = BlockGrid(200, 300, 64)
    flow = (rng.standard_normal((50, 75, 2)) * 9).astype(np.float32)
    flow[::2] = np.round(flow[::2] * 2) / 2
    frame = Frame(grid, torch.full(grid.shape, int(BlockPath.FULL)), torch.device("cpu"))
    ctx = ReuseContext(frame, None, MotionField(flow, 4.0))
    sources = ctx._moved_sources((bf, ext))
    s = 64 / bf
    width = grid.cols * bf
    for y in range(0, grid.rows * bf, max(1, bf // 8)):
        for x in range(0, width, max(1, bf // 8)):
            dx, dy = (float(v) for v in flow[min(int((y + 0.5) * s / 4), 49),
                                              min(int((x + 0.5) * s / 4), 74)])
            sy = min(max(round(y + dy / s), 0), ext[0] - 1)  # round: ties to even, as rint
            sx = min(max(round(x + dx / s), 0), ext[1] - 1)
            assert sources[y, x] == sy * width + sx


@pytest.mark.parametrize("scale,s", [(4.0, 1.0), (2.0, 1.0), (3.0, 1.0), (1.0, 1.0), (2.0, 2.0),
                                     (4.0, 8.0)])
def test_each_pixel_comes_from_the_nearest_pixel_the_flow_points_at(scale, s):
    """The source rule, pixel by pixel: the flow sample the pixel's centre lies in, the
    position it points at in this level's pixels, rounded, kept inside the extent."""
    rng = np.random.default_rng(int(scale * 10 + s))
    height, width, extent = 13, 17, (12, 15)
    fh, fw = int(np.ceil(height * s / scale)), int(np.ceil(width * s / scale))
    flow = (rng.standard_normal((fh, fw, 2)) * 6).astype(np.float32)
    flow[::2] = np.round(flow[::2]) + np.float32(0.5)  # ties round to even
    sources = motion_sources(MotionField(flow, scale), height, width, s, extent)
    for y in range(height):
        for x in range(width):
            dx, dy = flow[min(int((y + 0.5) * s / scale), fh - 1),
                          min(int((x + 0.5) * s / scale), fw - 1)]
            sy = min(max(round(y + float(dy) / s), 0), extent[0] - 1)
            sx = min(max(round(x + float(dx) / s), 0), extent[1] - 1)
            assert sources[y, x] == sy * width + sx


@pytest.mark.parametrize("scale,s", [(4.0, 1.0), (2.0, 1.0), (1.0, 1.0), (2.0, 2.0)])
@pytest.mark.parametrize("step", [2, 3])
def test_a_step_gives_the_same_sources_at_every_step_th_pixel(scale, s, step):
    rng = np.random.default_rng(step)
    height, width = 13, 17
    fh, fw = int(np.ceil(height * s / scale)), int(np.ceil(width * s / scale))
    motion = MotionField((rng.standard_normal((fh, fw, 2)) * 6).astype(np.float32), scale)
    every = motion_sources(motion, height, width, s, (height, width))
    assert np.array_equal(motion_sources(motion, height, width, s, (height, width), step),
                          every[::step, ::step])
