"""Label colouring: palette lookup and blending."""

from __future__ import annotations

import numpy as np

from seg_accel_ros.visualization import colorize, palette_lut


def test_colorize_matches_palette_lookup():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 11, (37, 53), dtype=np.uint8)
    colors = rng.integers(0, 256, (11, 3), dtype=np.uint8)
    out = colorize(labels, palette_lut(colors))
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, colors[labels])


def test_unknown_ids_are_black_and_blending_mixes_the_image():
    labels = np.full((4, 4), 200, np.uint8)
    lut = palette_lut([(255, 0, 0)])
    assert not colorize(labels, lut).any()
    image = np.full((4, 4, 3), 100, np.uint8)
    blended = colorize(np.zeros((4, 4), np.uint8), lut, image, alpha=0.5)
    np.testing.assert_array_equal(blended[0, 0], [178, 50, 50])
