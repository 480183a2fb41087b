"""The temporal policy: one decision per block and frame among REUSE, LOW and FULL.

It combines, in this order of precedence:

- keyframes (AR-Seg): every ``keyframe_interval`` frames, and whenever there is no usable
  cache, all blocks run FULL; any all-FULL frame restarts that count (it refreshes all a
  keyframe would), so a staleness-forced frame is not followed by a keyframe too soon;
- distortion after motion compensation (DNP): below ``reuse_threshold`` a block is REUSEd ...
- ... unless it was REUSEd ``max_reuse_frames`` frames in a row (bounded staleness);
- complexity (SegBlocks): of the computed blocks, the most complex run FULL, up to
  ``full_fraction`` of all blocks; the others run LOW;
- a latency budget: with ``target_latency_ms`` > 0, :class:`LatencyController` scales the
  reuse threshold up and the FULL share down (or the reverse) so that measured latency
  tracks the target.

With ``reuse_granularity = "frame"`` REUSE is decided for the whole frame: every block is
REUSEd when the frame's mean distortion is below the threshold (and the frame's REUSE streak
allows it), none otherwise. With ``reuse_drift_budget`` > 0 each computed frame also measures
how far the labels REUSE would have shown have drifted from the network's (the share of pixels
that differ, per frame carried), and the next REUSE run lasts only as many frames as keep
that drift within the budget: short runs where the network's labels change from frame to
frame, long ones (up to ``max_reuse_frames``) where they hold.

Where the block machinery's fixed cost per frame is as large as the work a partly REUSEd
frame saves (small frames on a CPU), a frame that is either all REUSE (no network at all) or
computed as a whole is the faster schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from seg_accel_ros.engine.result import BlockPath

REUSE, LOW, FULL = int(BlockPath.REUSE), int(BlockPath.LOW), int(BlockPath.FULL)
REUSE_GRANULARITIES = ("block", "frame")
PIPELINED_FUSION = ("pipelined runs whole frames without LOW blocks: it cannot be combined "
                    "with low_fusion")


@dataclass(frozen=True)
class TemporalConfig:
    """Thresholds of the temporal policy (validated here, at the boundary)."""

    reuse_threshold: float = 2.5  # mean |grey residual| (0..255) below which a block is REUSEd
    full_fraction: float = 0.25  # at most this share of all blocks runs FULL between keyframes
    keyframe_interval: int = 12  # all FULL at least every K frames (1: every frame)
    max_reuse_frames: int = 4  # no block is REUSEd more than this many frames in a row
    target_latency_ms: float = 0.0  # > 0: adapt the thresholds to meet this latency
    motion_downscale: int = 4  # optical flow on the frame downscaled this many times
    reuse_granularity: str = "block"  # REUSE per block, or for the whole frame ("frame")
    pipelined: bool = False  # frame granularity: the network runs on a second thread
    reuse_drift_budget: float = 0.0  # frame granularity: > 0 bounds REUSE runs by measured drift

    def __post_init__(self) -> None:
        for name in ("reuse_threshold", "target_latency_ms", "reuse_drift_budget"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.full_fraction, (int, float)) and 0.0 <= self.full_fraction <= 1.0):
            raise ValueError(f"full_fraction must be in [0, 1], got {self.full_fraction!r}")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1, got {self.keyframe_interval}")
        if self.max_reuse_frames < 0:
            raise ValueError(f"max_reuse_frames must be >= 0, got {self.max_reuse_frames}")
        if self.motion_downscale < 1:
            raise ValueError(f"motion_downscale must be >= 1, got {self.motion_downscale}")
        if self.reuse_granularity not in REUSE_GRANULARITIES:
            raise ValueError(f"reuse_granularity must be one of {REUSE_GRANULARITIES}, "
                             f"got {self.reuse_granularity!r}")
        if self.reuse_drift_budget > 1:
            raise ValueError("reuse_drift_budget is a share of pixels: at most 1, got "
                             f"{self.reuse_drift_budget}")
        if self.reuse_drift_budget > 0 and (self.reuse_granularity != "frame"
                                            or self.pipelined):
            raise ValueError("reuse_drift_budget needs reuse_granularity 'frame' without "
                             "pipelined (it sets how long whole frames are REUSEd)")
        if self.pipelined and self.reuse_granularity != "frame":
            raise ValueError("pipelined needs reuse_granularity 'frame' (the network runs "
                             "on whole frames on its own thread)")


class LatencyController:
    """Integral control in log space: ``gain`` scales thresholds by ``exp(gain * log(L / T))``
    per frame, so a frame twice too slow raises the reuse threshold by ``2**gain``."""

    def __init__(self, gain: float = 0.3, limit: float = 4.0) -> None:
        self.gain = gain
        self.limit = limit  # |log| bound of the adaptation: a factor of e**4 ~ 55 either way
        self.log_scale = 0.0

    def update(self, latency_ms: float, target_ms: float) -> None:
        if target_ms <= 0 or not math.isfinite(latency_ms) or latency_ms <= 0:
            return
        step = self.gain * math.log(latency_ms / target_ms)
        self.log_scale = min(self.limit, max(-self.limit, self.log_scale + step))

    @property
    def scale(self) -> float:
        """> 1: too slow so far (more REUSE, fewer FULL blocks); < 1: room to spare."""
        return math.exp(self.log_scale)


class TemporalPolicy:
    """Per-frame REUSE / LOW / FULL maps; keeps the keyframe clock and the reuse streaks."""

    def __init__(self, config: TemporalConfig | None = None) -> None:
        self.config = config or TemporalConfig()
        self.controller = LatencyController()
        self.reset()

    def reset(self) -> None:
        """A new stream: the next frame is a keyframe."""
        self._since_keyframe: int | None = None
        self._streak: np.ndarray | None = None
        self._run_limit: int | None = None  # from the measured drift (reuse_drift_budget)
        self._carried = 1  # frames the labels REUSE would show now were carried over

    def set(self, **changes: float | int) -> None:
        """Change thresholds from the next frame on (validated like the config)."""
        self.config = replace(self.config, **changes)
        if "target_latency_ms" in changes:
            self.controller.log_scale = 0.0

    @property
    def effective(self) -> tuple[float, float]:
        """(reuse threshold, FULL share) after the latency controller's adaptation."""
        c = self.config
        if c.target_latency_ms <= 0:
            return c.reuse_threshold, c.full_fraction
        s = self.controller.scale
        return c.reuse_threshold * s, min(1.0, c.full_fraction / s)

    def observe(self, latency_ms: float) -> None:
        """Feed back one frame's measured latency (used when a target is set)."""
        self.controller.update(latency_ms, self.config.target_latency_ms)

    @property
    def measures_drift(self) -> bool:
        """Whether computed frames should report their drift (:meth:`observe_drift`)."""
        return self.config.reuse_drift_budget > 0

    def observe_drift(self, share: float) -> None:
        """Feed back the last decided (computed) frame's drift: the ``share`` of its pixels
        where the labels REUSE would have shown, carried since the last computed frame,
        differ from the network's. The next REUSE run is as long as keeps drift, taken as
        growing in proportion to the frames carried, within the budget."""
        if not self.measures_drift:
            return
        per_frame = share / self._carried
        limit = self.config.max_reuse_frames
        if per_frame > 0:
            limit = min(limit, math.floor(self.config.reuse_drift_budget / per_frame))
        self._run_limit = limit

    @property
    def reuse_run_limit(self) -> int:
        """The longest REUSE streak allowed now: ``max_reuse_frames``, or less where the
        measured drift asks for it."""
        c = self.config
        if self._run_limit is None or not self.measures_drift:
            return c.max_reuse_frames
        return min(c.max_reuse_frames, self._run_limit)

    def next_is_all_full(self) -> bool:
        """Whether the next frame runs every block FULL whatever its distortion: a keyframe
        is due, or every block's REUSE streak is at its bound and every computed block runs
        FULL. Its motion then need not be estimated."""
        c = self.config
        if (self._since_keyframe is None or self._streak is None
                or self._since_keyframe + 1 >= c.keyframe_interval):
            return True
        if self.measures_drift:  # a computed frame measures its drift: it needs the motion
            return False
        return (int(self._streak.min()) >= c.max_reuse_frames
                and round(self.effective[1] * self._streak.size) >= self._streak.size)

    def decide(self, distortion: np.ndarray | None,
               complexity: np.ndarray | Callable[[], np.ndarray],
               shape: tuple[int, int] | None = None) -> np.ndarray:
        """rows x cols BlockPath map. ``distortion`` None: no usable cache (keyframe).
        ``complexity`` may be a function computing the scores: it is then called only when
        they rank blocks (some, not all, computed blocks run FULL). ``shape``: the grid's,
        which a keyframe otherwise takes from the scores."""
        c = self.config
        if distortion is not None:
            shape = distortion.shape
        elif shape is None:
            complexity = _scores(complexity)
            shape = complexity.shape
        keyframe = (distortion is None or self._since_keyframe is None or self._streak is None
                    or self._streak.shape != shape
                    or self._since_keyframe + 1 >= c.keyframe_interval)
        if keyframe:
            self._since_keyframe = 0
            self._streak = np.zeros(shape, np.int64)
            return np.full(shape, FULL, np.int64)
        assert self._streak is not None and distortion is not None
        self._since_keyframe += 1
        threshold, full_fraction = self.effective
        if c.reuse_granularity == "frame":
            self._carried = int(self._streak.max()) + 1
            whole = (float(distortion.mean()) < threshold
                     and int(self._streak.max()) < self.reuse_run_limit)
            reuse = np.full(shape, whole)
        else:
            reuse = (distortion < threshold) & (self._streak < c.max_reuse_frames)
        self._streak = np.where(reuse, self._streak + 1, 0)
        paths = np.full(shape, LOW, np.int64)
        paths[reuse] = REUSE
        computed = np.flatnonzero(~reuse)
        k = min(round(full_fraction * reuse.size), computed.size)
        if k == computed.size:  # every computed block FULL (or none computed): no ranking
            paths.flat[computed] = FULL
            if computed.size == reuse.size:  # all FULL: refreshes what a keyframe would
                self._since_keyframe = 0
        elif k > 0:
            complexity = _scores(complexity)
            order = np.argsort(-complexity.ravel()[computed], kind="stable")[:k]
            paths.flat[computed[order]] = FULL
        return paths


def _scores(complexity: np.ndarray | Callable[[], np.ndarray]) -> np.ndarray:
    return complexity() if callable(complexity) else complexity
