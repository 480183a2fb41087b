"""Motion estimation and per-block distortion after compensation (issue 5)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seg_accel_ros.engine.blocks.reuse import MotionField, motion_sources
from seg_accel_ros.engine.motion import (
    MotionEstimator,
    block_distortion,
    move_nearest,
    pixel_positions,
    warp_previous,
)


def _scene(h: int = 256, w: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 24, w // 24, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def test_flow_finds_a_global_translation():
    est = MotionEstimator(downscale=4)
    img = _scene()
    moved = np.zeros_like(img)
    moved[:, 8:] = img[:, :-8]  # content moves 8 px right: it was 8 px to the left before
    motion = est.estimate(est.prepare(moved), est.prepare(img))
    interior = motion.flow[8:-8, 8:-8]
    assert abs(np.median(interior[..., 0]) + 8.0) < 1.5  # input pixels
    assert abs(np.median(interior[..., 1])) < 1.5


def test_compensated_distortion_is_small_for_pure_motion_and_large_for_new_content():
    est = MotionEstimator(downscale=4)
    img = _scene()
    moved = np.zeros_like(img)
    moved[:, 8:] = img[:, :-8]
    moved[:128, 256:] = 255 - moved[:128, 256:]  # one block's content really changes
    cur, prev = est.prepare(moved), est.prepare(img)
    d = block_distortion(cur, prev, est.estimate(cur, prev), (2, 3), 128)
    assert d[0, 2] > 20
    assert d[1, 1] < 5


def test_identical_frames_have_zero_distortion():
    est = MotionEstimator()
    g = est.prepare(_scene())
    d = block_distortion(g, g, est.estimate(g, g), (2, 3), 128)
    assert np.allclose(d, 0.0, atol=0.5)


def test_warping_pulls_each_pixel_from_where_the_flow_says_it_was():
    prev = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    flow = np.zeros((12, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = -3.0, 2.0  # each pixel was 3 px left and 2 px down
    warped = warp_previous(prev, MotionField(flow * np.float32(2), 2.0))  # input pixels
    assert np.array_equal(warped[:-2, 3:], prev[2:, :-3])
    assert np.array_equal(warped[-1, 3:], prev[-1, :-3])  # beyond the edge: its pixel


def test_pixel_positions_are_shared_and_read_only():
    positions = pixel_positions(3, 4)
    assert positions is pixel_positions(3, 4)
    assert positions[2, 1].tolist() == [1.0, 2.0]  # (x, y)
    assert not positions.flags.writeable


@pytest.mark.parametrize(("h", "w", "scale"), [(48, 64, 1.0), (48, 64, 2.0), (47, 61, 2.0),
                                               (48, 64, 4.0), (45, 70, 3.0)])
def test_move_nearest_takes_each_pixel_from_the_source_the_cache_would(h, w, scale):
    """Frame-granular REUSE moves labels by one remap; it must pick the pixels the feature
    cache's flat source index picks, ties at half a pixel and the frame border included."""
    rng = np.random.default_rng(int(h * w * scale))
    fh, fw = -(-h // int(scale)), -(-w // int(scale))
    flow = (rng.integers(-80, 81, (fh, fw, 2)) / 8).astype(np.float32)  # halves and eighths
    motion = MotionField(flow, scale)
    labels = rng.integers(0, 11, (h, w), dtype=np.uint8)
    confidence = rng.random((h, w), dtype=np.float32)
    sources = motion_sources(motion, h, w, 1.0, (h, w))
    for values in (labels, confidence):
        expected = values.ravel().take(sources).reshape(h, w)
        np.testing.assert_array_equal(move_nearest(values, motion), expected)
