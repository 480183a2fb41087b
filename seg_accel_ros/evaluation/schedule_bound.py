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


def warp_labels(previous: np.ndarray, motion: MotionField) -> np.ndarray:
    """``previous`` HxW labels moved into the current frame (nearest label, border
    replicated), with the flow interpolated bilinearly to full resolution."""
    h, w = previous.shape
    flow = cv2.resize(motion.flow, (w, h), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(previous, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_NEAREST,
                     borderMode=cv2.BORDER_REPLICATE)


@dataclass
class ScheduleBound:
    """Streams dense labels and the motion between frames; keeps each frame's drift: the share
    of pixels its labels, moved 1..``max_run`` frames on, disagree with those frames' labels."""

    max_run: int = 8
    drift: list[np.ndarray] = field(default_factory=list)
    _carried: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_run < 0:
            raise ValueError(f"max_run must be >= 0, got {self.max_run}")

    def add(self, labels: np.ndarray, motion: MotionField | None) -> None:
        """The next frame's dense labels and the motion from the previous frame to it; None
        where the stream broke (first frame, size change): no earlier frame reaches this one."""
        t = len(self.drift)
        row = np.full(self.max_run + 1, np.inf)
        row[0] = 0.0
        self.drift.append(row)
        carried = []
        if motion is not None:
            for source, moved in self._carried:
                moved = warp_labels(moved, motion)
                self.drift[source][t - source] = float((moved != labels).mean())
                if t - source < self.max_run:
                    carried.append((source, moved))
        if self.max_run:
            carried.append((t, labels))
        self._carried = carried

    def table(self) -> np.ndarray:
        """frames x (max_run + 1) drift; column k: moved k frames on (inf: not reachable)."""
        return np.array(self.drift).reshape(len(self.drift), self.max_run + 1)

    def best_agreement(self, computed: int) -> float | None:
        """The best mean agreement with at most ``computed`` computed frames (the first frame
        is one); None when that many cannot cover the frames within ``max_run``."""
        return best_schedule_agreement(self.table(), computed)

    def fixed_agreement(self, run: int) -> tuple[float, float]:
        """(computed share, mean agreement) of computing every ``run + 1``-th frame, and every
        frame the previous computed one cannot reach."""
        return fixed_schedule_agreement(self.table(), run)

    def summary(self, shares: tuple[float, ...]) -> dict:
        frames = len(self.drift)
        best = []
        for share in shares:
            computed = max(1, round(share * frames))
            best.append({"computed_share": computed / frames, "computed": computed,
                         "agreement": self.best_agreement(computed)})
        fixed = []
        for run in range(1, self.max_run + 1):
            share, agree = self.fixed_agreement(run)
            fixed.append({"max_reuse_frames": run, "computed_share": share, "agreement": agree})
        return {"frames": frames, "max_run": self.max_run, "best": best, "fixed": fixed}


def best_schedule_agreement(drift: np.ndarray, computed: int) -> float | None:
    """Shortest path over (next computed frame, computed so far) on a drift table (see
    :meth:`ScheduleBound.table`): the least total disagreement with ``computed`` frames."""
    frames, width = drift.shape
    if frames == 0 or computed < 1:
        return None
    computed = min(computed, frames)
    # cost[i, c]: least disagreement over frames 0..i-1 with c of them computed, frame i next.
    cost = np.full((frames + 1, computed + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(frames):
        run_cost = np.cumsum(drift[i, :width])  # drift[i, 0] is 0: the computed frame itself
        for run in range(width):
            j = i + 1 + run
            if j > frames or not np.isfinite(run_cost[run]):
                break
            np.minimum(cost[j, 1:], cost[i, :-1] + run_cost[run], out=cost[j, 1:])
    least = float(cost[frames].min())
    return None if not np.isfinite(least) else 1.0 - least / frames


def fixed_schedule_agreement(drift: np.ndarray, run: int) -> tuple[float, float]:
    """(computed share, mean agreement) of REUSE runs of ``run`` frames between computed ones."""
    frames, width = drift.shape
    if frames == 0:
        return 0.0, 1.0
    run = min(run, width - 1)
    computed, lost, last = 0, 0.0, 0
    for t in range(frames):
        age = t - last
        if t == 0 or age > run or not np.isfinite(drift[last, age]):
            computed, last = computed + 1, t
        else:
            lost += drift[last, age]
    return computed / frames, 1.0 - lost / frames
