"""The reference engine: the whole network on every frame at full resolution."""

from __future__ import annotations

import time

import numpy as np
import torch

from seg_accel_ros.engine.result import BlockPath, FrameResult, PixelReduction
from seg_accel_ros.engine.upsampled_labels import network_pixel_maps
from seg_accel_ros.models.registry import LoadedModel


class DenseEngine:
    """Runs the network densely; the baseline every accelerated mode is measured against.

    ``confidence``: also return each pixel's max softmax probability (nothing reads it in
    dense mode; it costs a quarter of the output stage).
    """

    def __init__(self, model: LoadedModel, half_precision: bool = False,
                 confidence: bool = False) -> None:
        self.model = model
        self.confidence = confidence
        self.dtype = torch.float16 if half_precision and model.device.type == "cuda" else (
            torch.float32)
        if self.dtype == torch.float16:
            self.model.module.half()

    def reset(self) -> None:
        """Dense inference keeps no temporal state."""

    def _input(self, image_rgb: np.ndarray) -> torch.Tensor:
        return self.model.spec.preprocessing.to_tensor(image_rgb, self.model.device, self.dtype)

    @torch.inference_mode()
    def logits(self, image_rgb: np.ndarray) -> torch.Tensor:
        """1xCxHxW float32 logits at input resolution."""
        return self.model.module(self._input(image_rgb)).float()

    def process(self, image_rgb: np.ndarray) -> FrameResult:
        """Segment one HxWx3 uint8 RGB frame."""
        t0 = time.perf_counter()
        x = self._input(image_rgb)
        reduce = PixelReduction(self.model.spec.num_classes, self.confidence)
        with torch.inference_mode():
            labels, *conf = (t[0] for t in network_pixel_maps(self.model.module, x, reduce))
        if self.model.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        return FrameResult(
            labels=labels.to(torch.uint8).cpu().numpy(),
            path_map=np.full((h, w), int(BlockPath.FULL), np.uint8),
            confidence=conf[0].cpu().numpy() if conf else None,
            timings_ms={"network": (t1 - t0) * 1e3},
            path_mix={"full": 1.0, "low": 0.0, "reuse": 0.0},
        )
