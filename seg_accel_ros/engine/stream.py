"""Detects breaks in a frame stream that invalidate temporal state."""

from __future__ import annotations


class StreamMonitor:
    """Says why temporal state must be reset: new resolution, time going back, or a gap.

    A looping rosbag shows up as stamps going backwards; a paused camera as a gap.
    """

    def __init__(self, max_gap_s: float = 1.0) -> None:
        if max_gap_s <= 0:
            raise ValueError("max_gap_s must be positive")
        self.max_gap_s = max_gap_s
        self._last_stamp: float | None = None
        self._last_shape: tuple[int, ...] | None = None

    def check(self, stamp_s: float, shape: tuple[int, ...]) -> str | None:
        """Record this frame; return the reason for a reset, or None when continuous."""
        last_stamp, last_shape = self._last_stamp, self._last_shape
        self._last_stamp, self._last_shape = stamp_s, tuple(shape)
        if last_stamp is None or last_shape is None:
            return None
        if tuple(shape) != last_shape:
            return f"resolution changed from {last_shape[:2]} to {tuple(shape)[:2]}"
        if stamp_s < last_stamp:
            return f"stamp went backwards by {last_stamp - stamp_s:.3f} s"
        if stamp_s == last_stamp:
            return "repeated stamp"
        if stamp_s - last_stamp > self.max_gap_s:
            return f"gap of {stamp_s - last_stamp:.3f} s between frames"
        return None

    def reset(self) -> None:
        self._last_stamp = self._last_shape = None
