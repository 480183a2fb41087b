"""Training the cross-resolution fusion (:mod:`seg_accel_ros.engine.fusion`) with the dense
network as teacher and a feature-similarity loss to its output (AR-Seg's FST).

A training example is a LOW block the temporal engine would fuse (:class:`EngineTeacher`):
the frames run through the engine itself, so the blocks are those its policy sends to LOW and
the moved FULL output is what its cache gives them; the dense output on the same block is the
target. Sequences come from video clips (real motion, occlusions, ages of several frames) and
from still images (CamVid train frames are a second apart) preceded by the frame a camera
with random realistic ego-motion (forward motion, yaw and a little pitch) saw ``gap`` frames
before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.layout import LOW
from seg_accel_ros.engine.fusion import CrossResolutionFusion, FusionInputs
from seg_accel_ros.engine.temporal import TemporalEngine
from seg_accel_ros.engine.temporal_policy import TemporalConfig
from seg_accel_ros.models.registry import LoadedModel


def ego_motion(image_rgb: np.ndarray, gap: int, rng: np.random.Generator) -> np.ndarray:
    """The frame a camera moving forward (with some yaw and pitch) saw ``gap`` frames before
    ``image_rgb`` (a 15-25 Hz driving camera): the image zoomed out about the horizon and
    shifted."""
    h, w = image_rgb.shape[:2]
    zoom = 1.0 + gap * rng.uniform(0.004, 0.03)
    dx = gap * rng.normal(0.0, 0.006 * w)
    dy = gap * rng.normal(0.0, 0.002 * h)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.35, 0.5)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = cx + (xs - dx - cx) * zoom
    map_y = cy + (ys - dy - cy) * zoom
    return cv2.remap(image_rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@dataclass
class FusionExample:
    """One block, in float16: LOW logits (C x h x w), moved FULL logits (C x 2h x 2w), where
    they exist (valid, 1 x 2h x 2w), their age in frames (1 x 2h x 2w) and the dense target
    (C x 2h x 2w)."""

    low: torch.Tensor
    moved_full: torch.Tensor
    valid: torch.Tensor
    age: torch.Tensor
    target: torch.Tensor


class EngineTeacher:
    """Examples as the engine makes them: frame sequences run through the temporal engine
    with a :class:`FusionInputs` probe; the LOW blocks it would have fused, with the dense
    network's output on the same blocks as the target."""

    def __init__(self, model: LoadedModel, config: TemporalConfig, block_size: int = 128,
                 blocks_per_frame: int = 4, seed: int = 0) -> None:
        self.model = model
        self.probe = FusionInputs()
        self.engine = TemporalEngine(model, config, block_size, fusion=self.probe,
                                     low_fusion=True)
        self.blocks_per_frame = blocks_per_frame
        self.rng = np.random.default_rng(seed)

    @torch.inference_mode()
    def sequence(self, frames: Iterable[np.ndarray]) -> list[FusionExample]:
        """Run the frames as one stream (from a keyframe); examples of every frame."""
        self.engine.reset()
        out: list[FusionExample] = []
        for frame in frames:
            self.probe.records.clear()
            self.engine.process(frame)
            if self.probe.records:
                out += self._examples(frame, *self.probe.records[-1])
        return out

    def _examples(self, frame: np.ndarray, low: torch.Tensor, moved: torch.Tensor,
                  valid: torch.Tensor, age: torch.Tensor) -> list[FusionExample]:
        usable = np.flatnonzero(valid.flatten(1).mean(1).numpy() > 0.5)
        picked = self.rng.permutation(usable)[:self.blocks_per_frame]
        if picked.size == 0:
            return []
        layout = self.engine.blocks.model.last_frame
        b = self.engine.block_size
        rows, cols = layout.grid.shape
        x = self.model.spec.preprocessing.to_tensor(frame, self.model.device)
        dense = self.model.module(x)[:, :self.model.spec.num_classes].float()
        h, w = dense.shape[2:]
        dense = F.pad(dense, (0, cols * b - w, 0, rows * b - h), mode="replicate")[0]
        gy, gx = (t.numpy() for t in layout.block_coords_cpu(LOW))
        return [FusionExample(
            low[i].half(), moved[i].half(), valid[i].half(), age[i].half(),
            dense[:, gy[i] * b:(gy[i] + 1) * b, gx[i] * b:(gx[i] + 1) * b].half().clone())
            for i in picked]


def chunks(frames: Iterable[np.ndarray], length: int) -> Iterator[list[np.ndarray]]:
    """Consecutive runs of ``length`` frames (the last may be shorter, at least 2)."""
    run: list[np.ndarray] = []
    for frame in frames:
        run.append(frame)
        if len(run) == length:
            yield run
            run = []
    if len(run) >= 2:
        yield run


def still_streams(images: Iterable[np.ndarray], gaps: tuple[int, ...],
                  rng: np.random.Generator) -> Iterator[list[np.ndarray]]:
    """[synthetic earlier frame, image] per still image, ``gaps`` frames of
    :func:`ego_motion` apart."""
    for image in images:
        yield [ego_motion(image, int(rng.choice(gaps)), rng), image]


def fst_loss(fused: torch.Tensor, target: torch.Tensor, ce_weight: float = 1.0
             ) -> torch.Tensor:
    """Feature similarity to the dense output (mean squared logit error), plus cross-entropy
    to the dense labels so that the classes that matter at decision boundaries weigh."""
    return F.mse_loss(fused, target) + ce_weight * F.cross_entropy(fused, target.argmax(1))


def batches(examples: list[FusionExample], batch_size: int, rng: np.random.Generator
            ) -> Iterator[tuple[torch.Tensor, ...]]:
    """Shuffled float32 batches (low, moved_full, valid, age, target)."""
    order = rng.permutation(len(examples))
    for i in range(0, len(order), batch_size):
        chunk = [examples[j] for j in order[i:i + batch_size]]
        yield tuple(torch.stack([getattr(e, name) for e in chunk]).float()
                    for name in ("low", "moved_full", "valid", "age", "target"))


def agreement_with_dense(fusion: CrossResolutionFusion | None,
                         examples: list[FusionExample]) -> dict[str, float]:
    """Pixel agreement with the dense labels of LOW alone, the moved FULL alone and fused."""
    hits = {"low": 0.0, "moved_full": 0.0, "fused": 0.0}
    count = 0
    with torch.inference_mode():
        for low, moved, valid, age, target in batches(examples, 64, np.random.default_rng(0)):
            labels = target.argmax(1)
            up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
            hits["low"] += float((up.argmax(1) == labels).sum())
            hits["moved_full"] += float((moved.argmax(1) == labels).sum())
            if fusion is not None:
                hits["fused"] += float((fusion(low, moved, valid, age).argmax(1) == labels).sum())
            count += labels.numel()
    return {k: v / max(count, 1) for k, v in hits.items()}


def train_fusion(fusion: CrossResolutionFusion, examples: list[FusionExample], epochs: int,
                 batch_size: int = 16, lr: float = 3e-3, seed: int = 0,
                 log: callable | None = None) -> None:
    """Adam with a cosine schedule on :func:`fst_loss`."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(fusion.parameters(), lr=lr)
    steps = epochs * -(-len(examples) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    fusion.train()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for low, moved, valid, age, target in batches(examples, batch_size, rng):
            loss = fst_loss(fusion(low, moved, valid, age), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * low.shape[0]
            n += low.shape[0]
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / max(n, 1):.4f}")
    fusion.eval()
