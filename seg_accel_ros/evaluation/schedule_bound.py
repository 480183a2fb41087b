"""The best pixel agreement with dense that any frame-granular REUSE schedule can reach.

A frame-granular schedule computes some frames densely and shows, on each frame between them,
the last computed frame's labels moved frame by frame by the motion. Which frames to compute
is the policy's whole choice. Knowing every frame's dense labels, the best choice for a given
number of computed frames is a shortest path over (frame, frames computed so far): no causal
policy (keyframes, distortion thresholds, ``reuse_drift_budget``) can beat it, so it tells
whether an agreement goal at a speed is reachable with a network at all, or needs a network
whose labels change less from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from seg_accel_ros.engine.blocks.reuse import MotionField
from seg_accel_ros.engine.motion import pixel_positions, remap_nearest


def bilinear_positions(motion: MotionField, height: int, width: int) -> np.ndarray:
    """height x width x (x, y) float32: where each pixel was in the previous frame, the flow
    interpolated bilinearly to full resolution."""
    flow = cv2.resize(motion.flow, (width, height), interpolation=cv2.INTER_LINEAR)
    return flow + pixel_positions(height, width)


def warp_labels(previous: np.ndarray, motion: MotionField) -> np.ndarray:
    """``previous`` HxW labels moved into the current frame (nearest label, border
    replicated), with the flow interpolated bilinearly to full resolution."""
    return remap_nearest(previous, bilinear_positions(motion, *previous.shape))


@dataclass
class ScheduleBound:
    """Streams dense labels and the motion between frames. For each frame and each age 1..
    ``max_run`` it keeps how its labels, moved that many frames on, compare with that frame's
    labels: the share of pixels that differ (drift) and per class the pixels agreed, shown and
    in the dense labels (for the mIoU against them)."""

    num_classes: int
    max_run: int = 8
    drift: list[np.ndarray] = field(default_factory=list)
    counts: list[np.ndarray] = field(default_factory=list)
    _carried: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_run < 0:
            raise ValueError(f"max_run must be >= 0, got {self.max_run}")

    def add(self, labels: np.ndarray, motion: MotionField | None) -> None:
        """The next frame's dense labels and the motion from the previous frame to it; None
        where the stream broke (first frame, size change): no earlier frame reaches this one."""
        t = len(self.drift)
        self.drift.append(np.r_[0.0, np.full(self.max_run, np.inf)])
        self.counts.append(np.zeros((self.max_run + 1, 3, self.num_classes), np.int64))
        self.counts[t][0] = self._class_counts(labels, labels)
        carried = []
        if motion is not None:
            positions = bilinear_positions(motion, *labels.shape)  # the same for every map
            for source, moved in self._carried:
                moved = remap_nearest(moved, positions)
                self.drift[source][t - source] = float((moved != labels).mean())
                self.counts[source][t - source] = self._class_counts(moved, labels)
                if t - source < self.max_run:
                    carried.append((source, moved))
        if self.max_run:
            carried.append((t, labels))
        self._carried = carried

    def _class_counts(self, shown: np.ndarray, dense: np.ndarray) -> np.ndarray:
        n = self.num_classes
        return np.stack([np.bincount(dense[shown == dense].ravel(), minlength=n)[:n],
                         np.bincount(shown.ravel(), minlength=n)[:n],
                         np.bincount(dense.ravel(), minlength=n)[:n]])

    def table(self) -> np.ndarray:
        """frames x (max_run + 1) drift; column k: moved k frames on (inf: not reachable)."""
        return np.array(self.drift).reshape(len(self.drift), self.max_run + 1)

    def score(self, computed: list[int]) -> tuple[float, float]:
        """(mean agreement, mIoU against the dense labels) of the schedule that computes the
        frames ``computed`` (the first frame among them) and moves labels on the others."""
        agreed, lost, last = np.zeros((3, self.num_classes), np.int64), 0.0, 0
        chosen = set(computed)
        for t in range(len(self.drift)):
            last = t if t in chosen else last
            lost += self.drift[last][t - last]
            agreed += self.counts[last][t - last]
        union = agreed[1] + agreed[2] - agreed[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, agreed[0] / union, np.nan)
        return 1.0 - lost / len(self.drift), float(np.nanmean(iou))

    def summary(self, shares: tuple[float, ...]) -> dict:
        """The best schedule at each share of computed frames, and fixed REUSE runs."""
        frames, table = len(self.drift), self.table()
        if frames == 0:
            return {"frames": 0, "max_run": self.max_run, "best": [], "fixed": []}
        best = []
        for computed in sorted({max(1, round(share * frames)) for share in shares},
                               reverse=True):
            schedule = best_schedule(table, computed)
            agreement, miou = self.score(schedule) if schedule else (None, None)
            best.append({"computed_share": computed / frames, "computed": computed,
                         "agreement": agreement, "miou_vs_dense": miou})
        fixed = []
        for run in range(1, self.max_run + 1):
            schedule = fixed_schedule(table, run)
            agreement, miou = self.score(schedule)
            fixed.append({"max_reuse_frames": run, "computed_share": len(schedule) / frames,
                          "agreement": agreement, "miou_vs_dense": miou})
        return {"frames": frames, "max_run": self.max_run, "best": best, "fixed": fixed}


def best_schedule(drift: np.ndarray, computed: int) -> list[int] | None:
    """The computed frames, at most ``computed`` of them, that leave the least total drift on
    a drift table (see :meth:`ScheduleBound.table`): a shortest path over (next computed frame,
    computed so far). None when that many cannot reach every frame."""
    frames, width = drift.shape
    if frames == 0 or computed < 1:
        return None
    computed = min(computed, frames)
    # cost[i, c]: least drift over frames 0..i-1 with c of them computed, frame i next.
    cost = np.full((frames + 1, computed + 1), np.inf)
    came_from = np.zeros((frames + 1, computed + 1), np.int64)
    cost[0, 0] = 0.0
    for i in range(frames):
        run_cost = np.cumsum(drift[i])  # drift[i, 0] is 0: the computed frame itself
        for run in range(width):
            j = i + 1 + run
            if j > frames or not np.isfinite(run_cost[run]):
                break
            candidate = cost[i, :-1] + run_cost[run]
            better = candidate < cost[j, 1:]
            cost[j, 1:][better] = candidate[better]
            came_from[j, 1:][better] = i
    count = int(np.argmin(cost[frames]))
    if not np.isfinite(cost[frames, count]):
        return None
    schedule, j = [], frames
    while j > 0:
        j = int(came_from[j, count])
        schedule.append(j)
        count -= 1
    return schedule[::-1]


def fixed_schedule(drift: np.ndarray, run: int) -> list[int]:
    """The computed frames of REUSE runs of ``run`` frames between them, and of every frame the
    previous computed one cannot reach."""
    frames, width = drift.shape
    schedule: list[int] = []
    for t in range(frames):
        age = t - schedule[-1] if schedule else 0
        if not schedule or age > min(run, width - 1) or not np.isfinite(drift[schedule[-1], age]):
            schedule.append(t)
    return schedule
