"""Mixed FULL / LOW assignments leave no seams (issue 4, exactness test (c)).

Against the dense network's labels, pixels within 8 px of an internal block border may disagree
at most 1.5 times as often as block interiors (and their mean absolute logit error may be at
most 1.5 times that of the interiors). Real CamVid frames (and the CamVid checkpoints of
CGNet and ESPNet) when ../shared is present; generated images and calibrated random weights
otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.models.preprocessing import IMAGENET, Preprocessing
from seg_accel_ros.models.registry import create_model, get_spec

pytestmark = pytest.mark.slow

NEAR = 8  # px from an internal block border
MAX_RATIO = 1.5
FRAMES = 2
WEIGHTS = {"cgnet": "cgnet_m3n21_camvid.pth", "espnet": "espnet_p2q8_camvid.pth"}


def border_masks(grid: BlockGrid) -> tuple[np.ndarray, np.ndarray]:
    """(near an internal block border, block interior); the outer image ring is in neither."""
    b = grid.block_size
    ys, xs = np.arange(grid.height), np.arange(grid.width)

    def near_line(coord: np.ndarray, size: int) -> np.ndarray:
        lines = np.arange(b, size, b)
        if lines.size == 0:
            return np.zeros_like(coord, dtype=bool)
        return np.abs(coord[:, None] - lines[None, :]).min(axis=1) < NEAR

    def inside(coord: np.ndarray, size: int) -> np.ndarray:
        return (coord >= NEAR) & (coord < size - NEAR)

    near = near_line(ys, grid.height)[:, None] | near_line(xs, grid.width)[None, :]
    valid = inside(ys, grid.height)[:, None] & inside(xs, grid.width)[None, :]
    return near & valid, ~near & valid


def _have_shared() -> bool:
    from conftest import SHARED

    return (SHARED / "data" / "camvid" / "val").is_dir() and (SHARED / "models").is_dir()


def _inputs(prep: Preprocessing | None, make_image) -> list[torch.Tensor]:
    """CamVid val frames when ../shared is present, generated images otherwise."""
    if not _have_shared():
        gen = torch.Generator().manual_seed(5)
        return [make_image((360, 480), gen) for _ in range(FRAMES)]
    from seg_accel_ros.datasets.camvid import CamVid

    data = CamVid("val")
    images = [data[i][0] for i in range(0, len(data), len(data) // FRAMES)][:FRAMES]
    prep = prep or IMAGENET
    return [prep.to_tensor(image) for image in images]


def _disagreement(engine: BlockEngine, net: torch.nn.Module, inputs: list[torch.Tensor],
                  num_classes: int) -> tuple[float, float, float, float]:
    """Label disagreement near borders / in interiors, and the same for mean |logit error|."""
    near_bad = near_n = inner_bad = inner_n = 0
    near_err = inner_err = 0.0
    for k, x in enumerate(inputs):
        grid = engine.grid(int(x.shape[2]), int(x.shape[3]))
        near, inner = border_masks(grid)
        g = torch.Generator().manual_seed(100 + k)
        # A random half, a checkerboard (every internal border is FULL|LOW) and a sparse map.
        rows, cols = grid.shape
        checker = (torch.arange(rows)[:, None] + torch.arange(cols)[None, :]) % 2
        maps = [grid.random(0.5, g), torch.where(checker.bool(), BlockPath.FULL, BlockPath.LOW),
                grid.random(0.25, g)]
        with torch.inference_mode():
            dense_logits = net(x)[0, :num_classes]
            dense = dense_logits.argmax(0).numpy()
            for paths in maps:
                logits = engine.run(x, paths)[0, :num_classes]
                err = (logits - dense_logits).abs().mean(0).numpy()
                near_err += float(err[near].sum())
                inner_err += float(err[inner].sum())
                mixed = logits.argmax(0).numpy()
                bad = mixed != dense
                near_bad += int(bad[near].sum())
                near_n += int(near.sum())
                inner_bad += int(bad[inner].sum())
                inner_n += int(inner.sum())
    return near_bad / near_n, inner_bad / inner_n, near_err / near_n, inner_err / inner_n


@pytest.mark.parametrize("name", ["resnet_like", "unet_like", "swiftnet_lite0", "cgnet", "espnet"])
def test_no_seams_at_block_borders(name, make_net, make_image, global_modules):
    prep = None
    if name in WEIGHTS and _have_shared():
        from conftest import shared_path

        model = create_model(name, shared_path("models", WEIGHTS[name]))
        net, prep = model.module, model.spec.preprocessing
    else:
        net = make_net(name)
        if name in WEIGHTS or name.startswith("swiftnet"):
            prep = get_spec(name).preprocessing
    num_classes = 11 if name in WEIGHTS or name.startswith("swiftnet") else 5
    engine = BlockEngine(net, 128, global_modules.get(name))
    near, inner, near_err, inner_err = _disagreement(engine, net, _inputs(prep, make_image),
                                                     num_classes)
    print(f"{name}: disagreement near borders {near:.2%}, interiors {inner:.2%}; "
          f"mean |logit error| {near_err:.4f} vs {inner_err:.4f}")
    assert near <= MAX_RATIO * inner, (
        f"{name}: {near:.2%} disagreement within {NEAR} px of block borders vs {inner:.2%} "
        f"in block interiors")
    # The same on logits: labels of untrained networks flip on small differences anyway.
    assert near_err <= MAX_RATIO * inner_err, (name, near_err, inner_err)


def test_border_masks_split_the_frame():
    grid = BlockGrid(360, 480, 128)
    near, inner = border_masks(grid)
    assert not (near & inner).any()
    assert near[128, 200] and near[200, 121] and not near[200, 200]
    assert not near[3, 128] and not inner[3, 200]  # outer ring belongs to neither
