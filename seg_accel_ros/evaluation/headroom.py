"""How much accuracy block-level acceleration can keep, whatever the policy: upper bounds.

Four ceilings, each measured on the network alone (no engine):

- **REUSE ceiling**: the dense labels of a frame against the dense labels of the previous
  frame moved by the estimated motion. A REUSE block can at best show the moved previous
  output, so where the network itself changes its mind between frames (flicker), REUSE
  disagrees with dense however good the cache is.
- **Schedule bound**: the best agreement any choice of computed frames reaches when the
  others show the last computed labels moved (:mod:`.schedule_bound`).
- **LOW ceiling**: the labels of the LOW path (the whole frame at half resolution) against the
  dense labels: what LOW blocks can at best agree with.
- **Policy bound** (with ground truth): the best mIoU any choice of ``k`` FULL blocks per frame
  can reach when the other blocks take the LOW labels. Two oracles: ranking blocks by how much
  FULL and LOW labels differ (the best a policy trained to imitate the dense network can do)
  and by how many more pixels FULL gets right (a cheating upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.reuse import MotionField
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.learned_policy import block_gain
from seg_accel_ros.engine.motion import MotionEstimator
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.evaluation.schedule_bound import ScheduleBound, warp_labels
from seg_accel_ros.evaluation.sources import EvalSource
from seg_accel_ros.models.registry import LoadedModel


def block_sums(values: np.ndarray, block_size: int) -> np.ndarray:
    """rows x cols sums of ``values`` over ``block_size`` blocks (partial blocks at the edge)."""
    h, w = values.shape
    rows, cols = -(-h // block_size), -(-w // block_size)
    padded = np.zeros((rows * block_size, cols * block_size), np.float64)
    padded[:h, :w] = values
    return padded.reshape(rows, block_size, cols, block_size).sum(axis=(1, 3))


def mix_blocks(full: np.ndarray, low: np.ndarray, chosen: np.ndarray, block_size: int
               ) -> np.ndarray:
    """Labels of ``full`` in the ``chosen`` (rows x cols bool) blocks, ``low`` elsewhere."""
    mask = BlockGrid(*full.shape, block_size).pixel_map(chosen).astype(bool)
    return np.where(mask, full, low)


def top_blocks(score: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring blocks (ties: first in raster order) as a bool map."""
    chosen = np.zeros(score.size, bool)
    chosen[np.argsort(-score.ravel(), kind="stable")[:k]] = True
    return chosen.reshape(score.shape)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


@dataclass
class PolicyBound:
    """Streams frames; mIoU of dense, all-LOW and the two oracle mixes at ``full_fraction``."""

    num_classes: int
    block_size: int
    full_fraction: float
    ignore_index: int | None = None
    matrices: dict[str, ConfusionMatrix] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.full_fraction <= 1.0:
            raise ValueError(f"full_fraction must be in [0, 1], got {self.full_fraction}")
        for name in ("dense", "all_low", "oracle_imitation", "oracle_ground_truth"):
            self.matrices[name] = ConfusionMatrix(self.num_classes)

    def add(self, full: np.ndarray, low: np.ndarray, truth: np.ndarray) -> None:
        """One frame: FULL labels, LOW labels and ground truth, all HxW."""
        b = self.block_size
        gain = block_gain(full, low, truth, b, self.ignore_index)
        k = round(self.full_fraction * gain.size)
        imitation = top_blocks(block_sums(full != low, b), k)
        cheating = top_blocks(gain, k)
        for name, pred in (("dense", full), ("all_low", low),
                           ("oracle_imitation", mix_blocks(full, low, imitation, b)),
                           ("oracle_ground_truth", mix_blocks(full, low, cheating, b))):
            self.matrices[name].update(pred, truth, self.ignore_index)

    def miou(self) -> dict[str, float]:
        return {name: cm.mean_iou() for name, cm in self.matrices.items()}


@dataclass
class ReuseCeiling:
    """Agreement of each frame's dense labels with the previous frame's, moved and unmoved."""

    moved: list[float] = field(default_factory=list)
    unmoved: list[float] = field(default_factory=list)

    def add(self, current: np.ndarray, previous: np.ndarray, motion: MotionField) -> None:
        self.moved.append(agreement(current, warp_labels(previous, motion)))
        self.unmoved.append(agreement(current, previous))

    def summary(self) -> dict[str, float | int]:
        if not self.moved:
            return {"pairs": 0}
        return {"pairs": len(self.moved), "agreement": float(np.mean(self.moved)),
                "agreement_unmoved": float(np.mean(self.unmoved)),
                "worst_pair": float(np.min(self.moved))}


SCHEDULE_SHARES = (0.5, 0.4, 1 / 3, 0.3, 0.25, 0.2)


def measure_headroom(source: EvalSource, model: LoadedModel, block_size: int = 128,
                     full_fraction: float = 0.25, motion_downscale: int = 4,
                     max_frames: int | None = None, max_reuse_frames: int = 8,
                     schedule_shares: tuple[float, ...] = SCHEDULE_SHARES) -> dict:
    """The ceilings of the module docstring on ``source``'s frames; the schedule bound at each
    of ``schedule_shares`` (shares of computed frames), with REUSE runs up to
    ``max_reuse_frames``."""
    dense = DenseEngine(model)
    blocks = BlockEngine(model, block_size)
    motion = MotionEstimator(motion_downscale)
    reuse = ReuseCeiling()
    schedule = ScheduleBound(model.spec.num_classes, max_reuse_frames)
    low_agreement: list[float] = []
    bound = (PolicyBound(model.spec.num_classes, block_size, full_fraction, source.ignore_index)
             if source.has_labels else None)
    previous: tuple[np.ndarray, np.ndarray] | None = None  # dense labels, motion frame
    frames = 0
    for frame in source.frames(max_frames):
        frames += 1
        full = dense.process(frame.rgb).labels
        grid = blocks.grid(*full.shape)
        low = blocks.process(frame.rgb, np.full(grid.shape, int(BlockPath.LOW))).labels
        low_agreement.append(agreement(low, full))
        small = motion.prepare(frame.rgb)
        moved_by = None
        if previous is not None and previous[0].shape == full.shape:
            moved_by = motion.estimate(small, previous[1])
            reuse.add(full, previous[0], moved_by)
        schedule.add(full, moved_by)
        previous = full, small
        if bound is not None and frame.labels is not None:
            bound.add(full, low, frame.labels)
    report: dict = {"source": source.description, "rate_hz": source.rate_hz, "frames": frames,
                    "model": model.spec.name, "block_size": block_size,
                    "motion_downscale": motion_downscale,
                    "reuse_ceiling": reuse.summary(),
                    "schedule_bound": schedule.summary(schedule_shares),
                    "low_ceiling": {"agreement": float(np.mean(low_agreement))
                                    if low_agreement else None}}
    if bound is not None:
        report["policy_bound"] = {"full_fraction": full_fraction, "miou": bound.miou()}
    return report
