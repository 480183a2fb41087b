"""A hand-made two-frame case (4x4, classes a/b, label 2 ignored) and fake engines for it.

Ground truth, engine output and dense output per frame (rows top to bottom):

frame 0  truth: a a a a / a a a a / b b b b / b b b b   engine: all a   dense: = truth
frame 1  truth: ignore row, then b everywhere           engine: all b   dense: all b

Against the truth (ignored row left out): class a tp 8, fp 8, fn 0 -> IoU 8/16 = 0.5;
class b tp 12, fp 0, fn 8 -> IoU 12/20 = 0.6; mIoU 55 %; pixel accuracy 20/28; class
accuracy (8/8 + 12/20) / 2 = 80 %. Against dense (every pixel): agreement 24/32 = 75 %;
class a tp 8, fp 8 -> 0.5; class b tp 16, fn 8 -> 16/24; mIoU (0.5 + 2/3) / 2.
The engine's block shares: FULL 1/4 then 1/2 (mean 3/8), LOW the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.result import BlockPath, FrameResult
from seg_accel_ros.evaluation.sources import EvalFrame, EvalSource

A, B, IGNORE = 0, 1, 2
TRUTH = [np.array([[A] * 4] * 2 + [[B] * 4] * 2, np.uint8),
         np.array([[IGNORE] * 4] + [[B] * 4] * 3, np.uint8)]
ENGINE = [np.full((4, 4), A, np.uint8), np.full((4, 4), B, np.uint8)]
DENSE = [TRUTH[0].copy(), np.full((4, 4), B, np.uint8)]
FULL_SHARES = [0.25, 0.5]

EXPECTED = {
    "miou": 55.0, "pixel_accuracy": 100 * 20 / 28, "class_accuracy": 80.0,
    "iou_per_class": {"a": 50.0, "b": 60.0},
    "pixel_agreement": 75.0, "fidelity_miou": 100 * (0.5 + 2 / 3) / 2,
    "path_full": 100 * 3 / 8,
}


def tiny_source() -> EvalSource:
    """The two frames (random pixels: the fakes ignore them), 10 Hz, with their labels."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in TRUTH]

    def frames() -> Iterator[EvalFrame]:
        for i, (rgb, truth) in enumerate(zip(images, TRUTH, strict=True)):
            yield EvalFrame(i, i * 100_000_000, i * 100_000_000, rgb, truth, f"f{i}")

    return EvalSource("folder", "hand-made", frames, 2, 10.0, True, "10 Hz",
                      class_names=("a", "b"), ignore_index=IGNORE)


class FakeEngine:
    """Returns the scripted labels frame after frame (the image is ignored)."""

    def __init__(self, config: EngineConfig) -> None:
        self.dense = config.mode == "dense"
        self.model = SimpleNamespace(
            spec=SimpleNamespace(name="fake", num_classes=2, palette=((255, 0, 0), (0, 0, 255))),
            weights="none", device="cpu")
        self.calls = 0

    def reset(self) -> None:
        """Start the script again (called after warm-up)."""
        self.calls = 0

    def process(self, rgb: np.ndarray) -> FrameResult:
        i = self.calls % 2
        self.calls += 1
        labels = (DENSE if self.dense else ENGINE)[i]
        full = 1.0 if self.dense else FULL_SHARES[i]
        path_map = np.full((4, 4), int(BlockPath.FULL if full == 1.0 else BlockPath.LOW),
                           np.uint8)
        return FrameResult(labels.copy(), path_map,
                           path_mix={"full": full, "low": 1.0 - full, "reuse": 0.0})
