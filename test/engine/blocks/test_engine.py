"""BlockEngine API, halo strategies, dense fallbacks and declared global modules."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.engine.blocks import BlockEngine, BlockGrid
from seg_accel_ros.engine.blocks.ops import forced_strategy
from seg_accel_ros.engine.result import BlockPath, pixel_labels
from seg_accel_ros.models.registry import create_model

TOL = 1e-4


def _mixed(grid: BlockGrid, seed: int = 0) -> torch.Tensor:
    return grid.random(0.5, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["resnet_like", "unet_like", "swiftnet_lite0", "espnet"])
def test_halo_strategies_agree_on_mixed_frames(name, make_net, make_image, global_modules):
    """Ring (bare blocks + border strips) and canvas (one map per level) compute what the
    padded gather computes; the gather itself is checked against the rules in
    test_blockpad.py."""
    net = make_net(name)
    # 64-px blocks: big enough for rings at strides 1-2, 1-2 px LOW blocks at stride 32.
    engine = BlockEngine(net, 64, global_modules.get(name))
    size = (200, 328) if name != "unet_like" else (200, 320)
    x = make_image(size, torch.Generator().manual_seed(3))
    paths = _mixed(engine.grid(*size))
    with torch.inference_mode():
        with forced_strategy("gather"):
            reference = engine.run(x, paths)
        # float32 rounding differs with the kernels' shapes: relative tolerance
        tol = 1e-5 * (1.0 + reference.abs().max().item())
        for strategy in ("ring", "canvas", None):
            with forced_strategy(strategy):
                out = engine.run(x, paths)
            assert (out - reference).abs().max().item() <= tol, strategy


def test_forced_strategy_rejects_unknown_names():
    with pytest.raises(ValueError, match="strategy"), forced_strategy("magic"):
        pass


@pytest.mark.parametrize("path", [BlockPath.FULL, BlockPath.LOW])
def test_single_path_frames_run_as_the_plain_network(path, make_net, make_image):
    net = make_net("resnet_like")
    x = make_image((256, 384), torch.Generator().manual_seed(4))
    shortcut = BlockEngine(net)
    machinery = BlockEngine(net, dense_single_path=False)
    paths = shortcut.grid(256, 384).uniform(path)
    with torch.inference_mode():
        a, b = shortcut.run(x, paths), machinery.run(x, paths)
    assert a.shape == b.shape
    assert (a - b)[:, :, 2:-2, 2:-2].abs().max().item() <= TOL


@pytest.mark.parametrize("path", [BlockPath.FULL, BlockPath.LOW])
@pytest.mark.parametrize("size", [(192, 256), (181, 243)])
@pytest.mark.parametrize("name", ["swiftnet_lite0", "cgnet"])
def test_single_path_labels_are_those_of_the_plain_networks_output(name, size, path):
    """Labels alone come from the logits before the last upsampling (a shortcut); they are
    the labels of the upsampled logits."""
    model = create_model(name)
    engine = BlockEngine(model)
    image = np.random.default_rng(5).integers(0, 255, (*size, 3), dtype=np.uint8)
    paths = engine.grid(*size).uniform(path)
    x = model.spec.preprocessing.to_tensor(image, model.device)
    with torch.inference_mode():
        expected = pixel_labels(engine.run(x, paths)[:, :model.spec.num_classes])[0]
    assert np.array_equal(engine.process(image, paths).labels, expected.numpy())


def test_process_returns_a_frame_result():
    model = create_model("cgnet")
    engine = BlockEngine(model, confidence=True)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    grid = engine.grid(200, 300)
    paths = np.array([[2, 1, 1], [1, 1, 2]])
    result = engine.process(image, paths)
    assert result.labels.shape == (200, 300) and result.labels.dtype == np.uint8
    assert result.labels.max() < 11
    assert np.array_equal(result.path_map, grid.pixel_map(paths))
    assert result.path_map[0, 0] == BlockPath.FULL and result.path_map[0, 150] == BlockPath.LOW
    assert result.path_mix == pytest.approx({"full": 2 / 6, "low": 4 / 6, "reuse": 0.0})
    assert result.confidence.shape == (200, 300)
    assert result.confidence.min() > 0.0 and result.confidence.max() <= 1.0
    assert result.timings_ms["network"] > 0
    without = BlockEngine(model).process(image, paths)  # confidence only when asked for
    assert without.confidence is None and np.array_equal(without.labels, result.labels)
    with torch.inference_mode():
        x = model.spec.preprocessing.to_tensor(image)
        expected = engine.run(x, torch.as_tensor(paths))[0].argmax(0).numpy()
    # (untrained weights: near-ties may resolve differently after the softmax)
    assert (result.labels != expected).mean() < 1e-3


def test_a_replaced_frame_is_freed_without_the_cycle_collector(make_net, make_image):
    """A stream makes one frame layout per path map: each goes as soon as the next replaces
    it, by reference counting. (Its levels point back to it; left as a cycle, frames waited
    for the cyclic collector and a 720p node's memory grew between collections.)"""
    engine = BlockEngine(make_net("resnet_like"), 64)
    x = make_image((128, 192), torch.Generator().manual_seed(5))
    grid = engine.grid(128, 192)
    gc.collect()
    gc.disable()
    try:
        with torch.inference_mode():
            engine.run(x, _mixed(grid, 1))
            first = weakref.ref(engine.model.last_frame)
            engine.run(x, _mixed(grid, 2))
        assert first() is None
    finally:
        gc.enable()

def test_process_needs_a_loaded_model(make_net):
    engine = BlockEngine(make_net("unet_like"))
    with pytest.raises(RuntimeError, match="LoadedModel"):
        engine.process(np.zeros((64, 64, 3), np.uint8), np.full((1, 1), 2))


def test_bad_inputs_are_rejected(make_net):
    engine = BlockEngine(make_net("unet_like"))
    x = torch.zeros(1, 3, 256, 256)
    with pytest.raises(ValueError, match="shape"):
        engine.run(x, torch.full((3, 2), BlockPath.FULL))
    with pytest.raises(ValueError, match="unsupported block paths"):
        engine.run(x, torch.full((2, 2), BlockPath.REUSE))
    with pytest.raises(ValueError, match="1 x C x H x W"):
        engine.run(torch.zeros(2, 3, 256, 256), torch.full((2, 2), BlockPath.FULL))


class _Unusual(nn.Module):
    """Operations without a block form (they run densely) and in-place item assignment."""

    def __init__(self, with_setitem: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 4, 3, padding=1)
        self.with_setitem = with_setitem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x))
        y = y - y.amax(dim=1, keepdim=True)  # channel reduction: dense fallback, split back
        y = F.pad(y, (2, 2, 2, 2), mode="reflect")[:, :, 2:-2, 2:-2]  # dense fallback
        if self.with_setitem:
            y[:, :2] = y[:, :2] * 0.5  # in-place on the dense copy, written back
        else:
            y = torch.cat([y[:, :2] * 0.5, y[:, 2:]], dim=1)
        return self.out(y)


@pytest.mark.parametrize("with_setitem", [False, True])
def test_unhandled_operations_fall_back_to_dense(with_setitem, make_image):
    torch.manual_seed(0)
    net = _Unusual(with_setitem).eval()
    engine = BlockEngine(net, 64, dense_single_path=False)
    x = make_image((150, 200), torch.Generator().manual_seed(5))
    grid = engine.grid(150, 200)
    with torch.inference_mode():
        dense = net(x)
        full = engine.run(x, grid.uniform(BlockPath.FULL))
        assert (full - dense).abs().max().item() <= TOL
        assert engine.model.last_fallbacks  # counted, by function name
        mixed = engine.run(x, _mixed(grid))
        twin = _Unusual(not with_setitem).eval()
        twin.load_state_dict(net.state_dict())
        mixed_twin = BlockEngine(twin, 64).run(x, _mixed(grid))
    assert (mixed - mixed_twin).abs().max().item() <= TOL


class _WithContext(nn.Module):
    """A global module that pools to a 3x3 grid and broadcasts back (declared by attribute)."""

    block_global_modules = ("context",)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.context = _GridContext(8)
        self.head = nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.relu(self.stem(x))
        return self.head(torch.cat([f, self.context(f)], 1))


class _GridContext(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.proj(F.adaptive_avg_pool2d(x, 3))
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_declared_global_module_runs_densely(make_image):
    torch.manual_seed(0)
    net = _WithContext().eval()
    engine = BlockEngine(net, 64, dense_single_path=False)
    assert set(engine.model.global_modules) == {"context"}
    x = make_image((192, 256), torch.Generator().manual_seed(6))
    grid = engine.grid(192, 256)
    with torch.inference_mode():
        dense = net(x)
        out = engine.run(x, grid.uniform(BlockPath.FULL))
        assert not engine.model.last_fallbacks  # the whole module ran on the assembled map
        engine.run(x, _mixed(grid))
    assert (out - dense).abs().max().item() <= TOL
    assert not net._forward_hooks and not net.context._forward_pre_hooks  # hooks removed


def test_grid_geometry_and_path_maps():
    grid = BlockGrid(720, 1280)
    assert grid.shape == (6, 10) and grid.padded_size == (768, 1280)
    paths = grid.random(0.25, torch.Generator().manual_seed(0))
    assert int((paths == BlockPath.FULL).sum()) == 15
    assert int((paths == BlockPath.LOW).sum()) == 45
    pixel = grid.pixel_map(paths.numpy())
    assert pixel.shape == (720, 1280) and pixel.dtype == np.uint8
    assert pixel[700, 1279] == paths[5, 9] and pixel[0, 127] == paths[0, 0]
    assert torch.equal(grid.check_paths(paths.numpy()), paths)
    with pytest.raises(ValueError, match="even"):
        BlockGrid(10, 10, 7)
    with pytest.raises(ValueError, match="full_fraction"):
        grid.random(1.5)


def test_block_batches_are_channels_last():
    """Depthwise convolutions and halo gathers are fast on channels-last batches only."""
    from seg_accel_ros.engine.blocks.gather import blocks_from_dense, image_to_blocks
    from seg_accel_ros.engine.blocks.layout import Frame

    grid = BlockGrid(200, 300, 64)
    frame = Frame(grid, _mixed(grid), torch.device("cpu"))
    x = image_to_blocks(torch.randn(1, 3, 200, 300), frame)
    y = blocks_from_dense(torch.randn(1, 8, 200, 300), x.level)
    for t in (*x.parts.values(), *y.parts.values()):
        assert t.is_contiguous(memory_format=torch.channels_last)
