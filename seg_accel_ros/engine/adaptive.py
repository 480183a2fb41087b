"""``blocks`` mode: each frame the complexity policy picks FULL or LOW per block, and the
block-sparse engine runs that assignment (SegBlocks)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.policy import ComplexityPolicy
from seg_accel_ros.engine.result import FrameResult
from seg_accel_ros.models.registry import LoadedModel


class AdaptiveBlockEngine:
    """Block-sparse segmentation whose FULL blocks follow the image and the last prediction."""

    def __init__(self, model: LoadedModel, policy: ComplexityPolicy) -> None:
        self.model = model
        self.policy = policy
        self.blocks = BlockEngine(model, block_size=policy.block_size,
                                  confidence=policy.needs_confidence)
        self._previous: FrameResult | None = None

    def set_full_fraction(self, full_fraction: float) -> None:
        """Change the share of FULL blocks from the next frame on."""
        self.policy.config = replace(self.policy.config, full_fraction=full_fraction)

    def reset(self) -> None:
        """Forget the previous prediction (a new stream starts)."""
        self._previous = None

    def process(self, image_rgb: np.ndarray) -> FrameResult:
        """Segment one HxWx3 uint8 RGB frame."""
        t0 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        prev = self._previous
        if prev is not None and prev.labels.shape != (h, w):
            prev = None
        paths = self.policy(image_rgb, self.blocks.grid(h, w).shape,
                            prev.labels if prev else None, prev.confidence if prev else None)
        t1 = time.perf_counter()
        result = self.blocks.process(image_rgb, paths)
        result.timings_ms = {"policy": (t1 - t0) * 1e3, **result.timings_ms}
        self._previous = result
        return result
