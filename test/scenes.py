"""Synthetic camera frames for engine tests."""

from __future__ import annotations

import cv2
import numpy as np


def scene(h: int = 256, w: int = 384, seed: int = 0) -> np.ndarray:
    """A smooth random HxWx3 uint8 RGB scene (textures larger than the flow's patches)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 24 + 2, w // 24 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (w + 48, h + 48), interpolation=cv2.INTER_CUBIC)[24:-24, 24:-24]
