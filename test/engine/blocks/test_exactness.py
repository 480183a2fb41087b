"""Block execution reproduces the dense network: all-FULL exactly, all-LOW as the dense network
on the 2x2-average-pooled image (issue 4, exactness tests (a) and (b))."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.result import BlockPath

NETS = ("resnet_like", "unet_like", "swiftnet_lite0", "cgnet", "espnet")
# 256x384: whole blocks; 360x480: partial blocks, odd feature sizes (45, 23 at strides 8, 16).
SIZES = ((256, 384), (360, 480))
# The U-Net needs multiples of 8, also for its dense run on the half-resolution image.
SIZES_LOW = {"unet_like": ((256, 384), (368, 496))}
TOL = 1e-4
BORDER = 2  # outer ring (full-res pixels) where bilinear clamping may differ from BlockPad


def _engine(net: torch.nn.Module, name: str, global_modules: dict, block_size: int = 128
            ) -> BlockEngine:
    # Single-path frames would run as the plain network: test the block machinery instead.
    return BlockEngine(net, block_size, global_modules.get(name), dense_single_path=False)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", NETS)
def test_all_full_equals_dense(name, size, make_net, make_image, global_modules):
    net = make_net(name)
    engine = _engine(net, name, global_modules)
    x = make_image(size, torch.Generator().manual_seed(10))
    with torch.inference_mode():
        dense = net(x)
        out = engine.run(x, engine.grid(*size).uniform(BlockPath.FULL))
    assert out.shape == dense.shape
    assert (out - dense).abs().max().item() <= TOL
    # Nothing ran on an assembled map: SwiftNet's upsampling of 12x15 -> 23x30 at 1/16 for the
    # odd-sized input is block-wise too (its pyramid pooling is a declared global module).
    assert not engine.model.last_fallbacks


@pytest.mark.parametrize(("name", "size", "block_size"), [
    ("resnet_like", (200, 328), 64),  # 1/16 maps of 12.5 x 20.5 blocks' worth
    ("unet_like", (136, 200), 32),
    ("espnet", (136, 200), 32),  # dilation 16 on 2-pixel LOW / 4-pixel FULL blocks at 1/8
])
def test_all_full_equals_dense_small_blocks(name, size, block_size, make_net, make_image,
                                            global_modules):
    net = make_net(name)
    engine = _engine(net, name, global_modules, block_size)
    x = make_image(size, torch.Generator().manual_seed(11))
    with torch.inference_mode():
        dense = net(x)
        out = engine.run(x, engine.grid(*size).uniform(BlockPath.FULL))
    assert (out - dense).abs().max().item() <= TOL


@pytest.mark.parametrize(("name", "size"), [
    (n, s) for n in NETS for s in SIZES_LOW.get(n, SIZES)], ids=str)
def test_all_low_equals_dense_on_half_resolution(name, size, make_net, make_image,
                                                 global_modules):
    net = make_net(name)
    engine = _engine(net, name, global_modules)
    x = make_image(size, torch.Generator().manual_seed(12))
    with torch.inference_mode():
        low = net(F.avg_pool2d(x, 2))
        expected = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        out = engine.run(x, engine.grid(*size).uniform(BlockPath.LOW))
    assert not engine.model.last_fallbacks
    assert out.shape == expected.shape
    inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    assert (out[inner] - expected[inner]).abs().max().item() <= TOL


@pytest.mark.parametrize("name", ("swiftnet_lite0", "cgnet", "espnet"))
def test_all_low_on_an_odd_size_gives_a_map_of_that_size(name, make_net, make_image,
                                                        global_modules):
    """The network then sees the half-resolution sizes (rounded up), and its output sizes are
    LOW ones: upsampled, they overshoot the image by a row and a column, which are cropped."""
    size = (255, 383)
    net = make_net(name)
    engine = _engine(net, name, global_modules)
    x = make_image(size, torch.Generator().manual_seed(13))
    with torch.inference_mode():
        low = net(F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2))
        expected = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        out = engine.run(x, engine.grid(*size).uniform(BlockPath.LOW))
    assert out.shape[-2:] == size
    inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    assert (out[inner] - expected[..., : size[0], : size[1]][inner]).abs().max().item() <= TOL


@pytest.mark.slow
@pytest.mark.shared
def test_trained_weights_all_full_and_all_low(camvid_root):
    """The CamVid checkpoints of CGNet and ESPNet on a real frame (needs ../shared)."""
    from conftest import shared_path

    from seg_accel_ros.datasets.camvid import CamVid
    from seg_accel_ros.models.registry import create_model

    image, _ = CamVid("val", camvid_root)[0]
    for name, file in (("cgnet", "cgnet_m3n21_camvid.pth"), ("espnet", "espnet_p2q8_camvid.pth")):
        model = create_model(name, shared_path("models", file))
        engine = BlockEngine(model, dense_single_path=False)
        x = model.spec.preprocessing.to_tensor(image)
        grid = engine.grid(*image.shape[:2])
        with torch.inference_mode():
            dense = model.module(x)
            full = engine.run(x, grid.uniform(BlockPath.FULL))
            low = engine.run(x, grid.uniform(BlockPath.LOW))
            expected_low = F.interpolate(model.module(F.avg_pool2d(x, 2)), scale_factor=2,
                                         mode="bilinear", align_corners=False)
        assert (full - dense).abs().max().item() <= TOL, name
        inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
        assert (low[inner] - expected_low[inner]).abs().max().item() <= TOL, name
