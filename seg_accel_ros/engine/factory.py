"""Builds the engine a configuration asks for; every engine has ``process`` and ``reset``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.dense import DenseEngine, configure_torch, resolve_device
from seg_accel_ros.engine.result import FrameResult
from seg_accel_ros.models.registry import LoadedModel, create_model


class Engine(Protocol):
    model: LoadedModel

    def process(self, image_rgb: np.ndarray) -> FrameResult: ...

    def reset(self) -> None: ...


def build_engine(config: EngineConfig) -> Engine:
    """Load the model and wrap it in the engine of ``config.mode``."""
    configure_torch(config)
    device = resolve_device(config.device)
    model = create_model(config.model, config.weights or None, device)
    if config.mode == "dense":
        return DenseEngine(model, config.half_precision)
    if config.mode == "blocks":
        from seg_accel_ros.engine.adaptive import AdaptiveBlockEngine
        from seg_accel_ros.engine.policy import ComplexityConfig, ComplexityPolicy

        policy = ComplexityPolicy(ComplexityConfig(full_fraction=config.full_fraction),
                                  block_size=config.block_size)
        return AdaptiveBlockEngine(model, policy)
    raise ValueError(f"engine mode {config.mode!r} is not available yet")
