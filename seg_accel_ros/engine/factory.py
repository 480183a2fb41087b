"""Builds the engine a configuration asks for; every engine has ``process`` and ``reset``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.learned_policy import LinearBlockScorer, trained_scorer
from seg_accel_ros.engine.result import FrameResult
from seg_accel_ros.models.clamped_conv import fuse_activations
from seg_accel_ros.models.folding import fold_batchnorm
from seg_accel_ros.models.pointwise import use_onednn_pointwise
from seg_accel_ros.models.registry import LoadedModel, create_model

log = logging.getLogger(__name__)
FOLD_EXAMPLE_SIZE = (256, 320)  # input on which BatchNorm folding is traced and checked


class EngineError(RuntimeError):
    """Raised when the engine cannot be set up (device, model)."""


def resolve_device(device: str) -> torch.device:
    """Check that ``device`` exists here; raise a clear :class:`EngineError` otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise EngineError(f"invalid device {device!r}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(
                f"device {device!r} requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise EngineError(f"device {device!r} requested but this machine has {count} "
                              f"CUDA device(s): cuda:0..cuda:{count - 1}")
    elif dev.type != "cpu":
        raise EngineError(f"device {device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    return dev


def configure_runtime(config: EngineConfig) -> None:
    """Process-wide settings for inference: flush denormals (40x CPU slowdowns without), and
    ``num_threads`` for both torch and OpenCV (motion estimation, resizing), so that the
    engine keeps to the cores it is given."""
    torch.set_flush_denormal(True)
    set_cpu_threads(config.num_threads)


def set_cpu_threads(threads: int) -> None:
    """Run torch's and OpenCV's parallel work on ``threads`` threads each (0: leave them)."""
    if threads > 0:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)


class Engine(Protocol):
    model: LoadedModel

    def process(self, image_rgb: np.ndarray) -> FrameResult: ...

    def reset(self) -> None: ...


def inference_model(name: str, weights: str | Path | None = None,
                    device: str | torch.device = "cpu") -> LoadedModel:
    """:func:`create_model` with BatchNorm folded into the convolutions and ReLU / ReLU6 into
    their kernels where they can be (checked on an example input; the network is left as it is
    when that fails) and its 1x1 convolutions run through oneDNN
    (:mod:`~seg_accel_ros.models.pointwise`)."""
    model = create_model(name, weights, device)
    h, w = FOLD_EXAMPLE_SIZE
    example = model.spec.preprocessing.to_tensor(
        np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8), model.device)
    module, folded, fused = model.module, 0, 0
    try:
        module, folded = fold_batchnorm(module, example)
        module, fused = fuse_activations(module, example)
    except Exception as exc:  # a network that cannot run on the example: keep what worked
        log.warning("inference rewrites of %s stopped (BatchNorm folding %s): %s", name,
                    "done" if folded else "skipped", exc)
    use_onednn_pointwise(module)
    return replace(model, module=module) if folded or fused else model


def block_scorer(config: EngineConfig, model: LoadedModel) -> LinearBlockScorer | None:
    """The learned FULL/LOW scorer ``config`` asks for: the one trained for the network and
    the weights it runs with (beside the weights file, or bundled; a scorer is trained for one
    set of weights), else None (the cheap complexity signals)."""
    if config.block_policy != "learned":
        return None
    scorer = trained_scorer(model.spec.name, model.weights)
    if scorer is None:
        log.info("no learned block scorer for %s with %s: FULL blocks follow the cheap "
                 "complexity signals", model.spec.name, model.weights)
    return scorer


def build_engine(config: EngineConfig) -> Engine:
    """Load the model and wrap it in the engine of ``config.mode``."""
    configure_runtime(config)
    device = resolve_device(config.device)
    model = inference_model(config.model, config.weights or None, device)
    if config.mode == "dense":
        return DenseEngine(model, config.half_precision)
    if config.mode == "blocks":
        from seg_accel_ros.engine.adaptive import AdaptiveBlockEngine
        from seg_accel_ros.engine.policy import ComplexityConfig, ComplexityPolicy

        policy = ComplexityPolicy(ComplexityConfig(full_fraction=config.full_fraction),
                                  block_size=config.block_size,
                                  scorer=block_scorer(config, model))
        return AdaptiveBlockEngine(model, policy)
    if config.mode == "temporal":
        from seg_accel_ros.engine.fusion import load_fusion
        from seg_accel_ros.engine.temporal import TemporalEngine

        fusion = load_fusion(model.spec.name, model.spec.num_classes, device=device)
        if fusion is None and config.low_fusion:
            log.warning("low_fusion is on, but there is no trained LOW-block fusion for %s: "
                        "LOW blocks stay plain", model.spec.name)
        return TemporalEngine(model, config.temporal(), block_size=config.block_size,
                              fusion=fusion, low_fusion=config.low_fusion,
                              scorer=block_scorer(config, model))
    raise ValueError(f"engine mode {config.mode!r} is not available")
