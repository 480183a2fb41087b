"""Renderings of label maps that people look at: palette colouring and overlays (no ROS)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PATH_COLORS = ((40, 40, 40), (255, 170, 0), (0, 200, 80))  # REUSE, LOW, FULL


def palette_lut(colors: Sequence[Sequence[int]]) -> np.ndarray:
    """A 256-entry lookup table (256x1x3 uint8) from a list of RGB colours; the rest black."""
    lut = np.zeros((256, 1, 3), np.uint8)
    table = np.asarray(colors, np.uint8).reshape(-1, 3)[:256]
    lut[: len(table), 0] = table
    return lut


def colorize(labels: np.ndarray, lut: np.ndarray, image: np.ndarray | None = None,
             alpha: float = 0.0) -> np.ndarray:
    """HxW class ids -> HxWx3 colours, optionally blended with ``image`` (weight ``alpha``).

    cv2.LUT on a 3-channel view is ~5x faster than numpy fancy indexing at 720p.
    """
    color = cv2.LUT(cv2.merge((labels, labels, labels)), lut)
    if image is not None and alpha > 0:
        color = cv2.addWeighted(image, alpha, color, 1.0 - alpha, 0.0)
    return color
