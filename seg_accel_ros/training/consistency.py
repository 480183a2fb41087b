"""Temporal consistency: nearby video frames, the motion between them, and a loss that asks the
network's predictions to follow that motion.

A network whose labels change from one frame to the next where the scene did not (flicker)
caps what moved labels can agree with (docs/headroom.md). Training on unlabelled video pairs
with this loss, beside the labelled loss, teaches it to change its mind only where the image
does: the prediction of a frame should equal the prediction of an earlier frame moved by the
optical flow, wherever that flow can be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.motion import pixel_positions
from seg_accel_ros.frame_sources import video_frames
from seg_accel_ros.training.transforms import ColorJitter


@dataclass(frozen=True)
class FramePair:
    """Two frames of a video and where each pixel of ``current`` was in ``previous``."""

    current: np.ndarray  # H x W x 3 uint8 RGB
    previous: np.ndarray
    flow: np.ndarray  # H x W x 2 (dx, dy): current pixel -> position in previous
    valid: np.ndarray  # H x W bool: a flow to trust (see :func:`trusted_flow`)


def trusted_flow(current_grey: np.ndarray, previous_grey: np.ndarray, dis: cv2.DISOpticalFlow,
                 max_error: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(flow current -> previous, valid): a pixel is valid where its source lies inside the
    frame and the flow back from there returns within ``max_error`` pixels (occlusions and
    flow failures do not)."""
    back = dis.calc(current_grey, previous_grey, None)
    forth = dis.calc(previous_grey, current_grey, None)
    h, w = current_grey.shape
    source = pixel_positions(h, w) + back
    returned = cv2.remap(forth, source[..., 0], source[..., 1], cv2.INTER_LINEAR)
    error = np.linalg.norm(back + returned, axis=-1)
    return back, lands_inside(source, h, w) & (error < max_error)


def lands_inside(source: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W bool: which (x, y) source positions lie within a ``height`` x ``width`` frame."""
    x, y = source[..., 0], source[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def read_video(path: str | Path, max_frames: int | None = None) -> list[np.ndarray]:
    """All frames (RGB) of a video file; a clear error when it cannot be read."""
    try:
        frames = list(islice(video_frames(path), max_frames))
    except FileNotFoundError:
        frames = []
    if len(frames) < 2:
        raise ValueError(f"{path}: fewer than two frames could be read")
    return frames


class VideoPairs(Sequence[FramePair]):
    """Every pair of frames 1..``max_gap`` apart in each clip, with its trusted flow.

    Flows are computed once, at construction (DIS, medium preset: the 439 pairs of a 221-frame
    540p clip take about a minute on one core), and kept as float16 (1 GB for that clip).
    """

    def __init__(self, clips: Sequence[Sequence[np.ndarray]], max_gap: int = 2) -> None:
        if max_gap < 1:
            raise ValueError(f"max_gap must be >= 1, got {max_gap}")
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._pairs: list[FramePair] = []
        for frames in clips:
            grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
            for t in range(1, len(frames)):
                for gap in range(1, min(max_gap, t) + 1):
                    flow, valid = trusted_flow(grey[t], grey[t - gap], dis)
                    self._pairs.append(FramePair(frames[t], frames[t - gap],
                                                 flow.astype(np.float16), valid))
        if not self._pairs:
            raise ValueError("no frame pairs: every clip needs at least two frames")

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], max_gap: int = 2,
                   max_frames: int | None = None) -> VideoPairs:
        return cls([read_video(p, max_frames) for p in paths], max_gap)

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, index: int) -> FramePair:  # type: ignore[override]
        return self._pairs[index]


@dataclass(frozen=True)
class PairCrop:
    """The same random scale, crop and flip for both frames of a pair, and the flow as a
    ``grid_sample`` grid (normalised source positions in the crop) with its valid mask.

    Pixels whose source falls outside the crop are not valid. With ``color`` both frames get
    the same colour jitter, and the previous frame's brightness then differs from the current's
    by a factor within ``1 +- exposure`` (a camera's exposure changing between frames).
    """

    crop: tuple[int, int] = (320, 448)
    scale_range: tuple[float, float] = (1.0, 1.4)
    flip: bool = True
    color: ColorJitter | None = None
    exposure: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.exposure < 1.0:
            raise ValueError(f"exposure must be in [0, 1), got {self.exposure}")
        if self.exposure and self.color is None:
            raise ValueError("an exposure change needs the pairs' colour jitter, which it "
                             "varies between the two frames (none is set)")

    def __call__(self, pair: FramePair, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(current 3xhxw uint8, previous 3xhxw uint8, grid hxwx2, valid hxw bool)."""
        height, width = self.crop
        h, w = pair.valid.shape
        scale = max(float(rng.uniform(*self.scale_range)), height / h, width / w)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        y0 = int(rng.integers(0, size[1] - height + 1))
        x0 = int(rng.integers(0, size[0] - width + 1))

        def cut(a: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
            return cv2.resize(a, size, interpolation=interpolation)[y0:y0 + height,
                                                                     x0:x0 + width]

        current, previous = cut(pair.current), cut(pair.previous)
        if self.color is not None:
            change = self.color.sample(rng)
            step = float(rng.uniform(1 - self.exposure, 1 + self.exposure))
            current = change(current)
            previous = replace(change, brightness=change.brightness * step)(previous)
        stretch = np.array([size[0] / w, size[1] / h], np.float32)
        flow = cut(pair.flow.astype(np.float32)) * stretch
        valid = cut(pair.valid.astype(np.uint8), cv2.INTER_NEAREST) > 0
        source = pixel_positions(height, width) + flow
        valid &= lands_inside(source, height, width)
        grid = source / np.array([width - 1, height - 1], np.float32) * 2 - 1
        if self.flip and rng.random() < 0.5:
            current, previous, valid = current[:, ::-1], previous[:, ::-1], valid[:, ::-1]
            grid = grid[:, ::-1] * np.array([-1, 1], np.float32)

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a))

        return (tensor(current).permute(2, 0, 1), tensor(previous).permute(2, 0, 1),
                tensor(grid), tensor(valid))


@dataclass(frozen=True)
class PairBatches:
    """Batches of cropped pairs; batch ``k`` is a function of ``(seed, k)`` only, so a resumed
    run sees the batches it would have seen."""

    pairs: Sequence[FramePair]
    transform: PairCrop = PairCrop()
    batch_size: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")

    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(current N x 3 x h x w uint8, previous, grid N x h x w x 2, valid N x h x w)."""
        rng = np.random.default_rng((self.seed, k, 11))
        picks = rng.integers(0, len(self.pairs), self.batch_size)
        items = [self.transform(self.pairs[int(i)], rng) for i in picks]
        current, previous, grid, valid = (torch.stack(c) for c in zip(*items, strict=True))
        return current, previous, grid, valid


def consistency_loss(current_logits: torch.Tensor, previous_logits: torch.Tensor,
                     grid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid pixels of the squared difference between the current frame's class
    probabilities and the previous frame's moved to it (both sides get gradients)."""
    current = current_logits.float().softmax(1)
    moved = F.grid_sample(previous_logits.float().softmax(1), grid.to(current.device),
                          mode="bilinear", align_corners=True)
    difference = (current - moved).square().sum(1)
    weight = valid.to(current.device, torch.float32)
    return (difference * weight).sum() / weight.sum().clamp(min=1.0)
