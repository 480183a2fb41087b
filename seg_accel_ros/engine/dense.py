"""The reference engine: the whole network on every frame at full resolution."""

from __future__ import annotations

import time

import numpy as np
import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.result import BlockPath, FrameResult
from seg_accel_ros.models.registry import LoadedModel, create_model


class EngineError(RuntimeError):
    """Raised when the engine cannot be set up (device, model)."""


def resolve_device(device: str) -> torch.device:
    """Check that ``device`` exists here; raise a clear :class:`EngineError` otherwise."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


def configure_torch(config: EngineConfig) -> None:
    """Process-wide torch settings for inference (flush denormals: 40x CPU slowdowns without)."""
    torch.set_flush_denormal(True)
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)


class DenseEngine:
    """Runs the network densely; the baseline every accelerated mode is measured against."""

    def __init__(self, model: LoadedModel, half_precision: bool = False) -> None:
        self.model = model
        self.dtype = torch.float16 if half_precision and model.device.type == "cuda" else (
            torch.float32)
        if self.dtype == torch.float16:
            self.model.module.half()

    @classmethod
    def from_config(cls, config: EngineConfig) -> DenseEngine:
        configure_torch(config)
        device = resolve_device(config.device)
        model = create_model(config.model, config.weights or None, device)
        return cls(model, config.half_precision)

    def reset(self) -> None:
        """Dense inference keeps no temporal state."""

    @torch.inference_mode()
    def logits(self, image_rgb: np.ndarray) -> torch.Tensor:
        """1xCxHxW float32 logits at input resolution."""
        x = self.model.spec.preprocessing.to_tensor(image_rgb, self.model.device, self.dtype)
        out = self.model.module(x)
        return out.float()

    def process(self, image_rgb: np.ndarray) -> FrameResult:
        """Segment one HxWx3 uint8 RGB frame."""
        t0 = time.perf_counter()
        logits = self.logits(image_rgb)
        prob = torch.softmax(logits[0, : self.model.spec.num_classes], dim=0)
        conf, labels = prob.max(dim=0)
        if self.model.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        return FrameResult(
            labels=labels.to(torch.uint8).cpu().numpy(),
            path_map=np.full((h, w), int(BlockPath.FULL), np.uint8),
            confidence=conf.cpu().numpy(),
            timings_ms={"network": (t1 - t0) * 1e3},
            path_mix={"full": 1.0, "low": 0.0, "reuse": 0.0},
        )
