"""Rolling statistics for the node's diagnostics: rates, percentiles and counters (no rclpy)."""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np


class RollingWindow:
    """The last ``size`` samples of one quantity, with percentiles."""

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def percentile(self, q: float) -> float:
        """q-th percentile, NaN when empty."""
        if not self._values:
            return float("nan")
        return float(np.percentile(np.fromiter(self._values, float), q))

    def __len__(self) -> int:
        return len(self._values)


class SequenceGaps:
    """Counts messages that never reached us, from gaps in each publisher's sequence numbers.

    With best-effort, depth-1 QoS a busy subscriber loses frames inside DDS (history
    overwrite or transport loss); the publisher's sequence numbers reveal how many.
    """

    def __init__(self) -> None:
        self._last: dict[bytes, int] = {}

    def observe(self, publisher: bytes, sequence: int | None) -> int:
        """Frames missed from ``publisher`` since its previous message (0 if unknown)."""
        if sequence is None:
            return 0
        last = self._last.get(publisher)
        self._last[publisher] = sequence
        if last is None or sequence <= last:  # first message, or the publisher restarted
            return 0
        return sequence - last - 1


class ReasonThrottle:
    """Log each kind of problem at once, then at most every ``period`` s per kind.

    A plain time throttle would hide a second, different problem behind the first one.
    """

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self._last: dict[str, float] = {}

    @staticmethod
    def kind(reason: str) -> str:
        return " ".join(reason.replace(":", " ").split()[:3])

    def should_log(self, reason: str, now: float) -> bool:
        key = self.kind(reason)
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            return False
        self._last[key] = now
        return True


class RateMeter:
    """Events per second over the last ``size`` event times (monotonic seconds)."""

    def __init__(self, size: int) -> None:
        self._times: deque[float] = deque(maxlen=size)

    def tick(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float, stale_after: float = 5.0) -> float:
        """Rate over the window; 0 when the last event is older than ``stale_after`` s."""
        if len(self._times) < 2 or now - self._times[-1] > stale_after:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass
class NodeStatistics:
    """Counters and windows the node updates from two threads; read as a snapshot."""

    window: int = 300
    received: int = 0
    processed: int = 0
    dropped: int = 0  # replaced in the mailbox by a newer frame before being processed
    lost: int = 0  # published but never delivered to the node (DDS queue or transport)
    rejected: int = 0  # bad input, skipped
    failed: int = 0  # inference raised
    reject_reasons: Counter = field(default_factory=Counter)
    last_error: str = ""
    last_rejected: str = ""  # why the last bad frame was rejected
    listening_since: float | None = None  # monotonic seconds; None while not subscribed
    last_input: float | None = None  # monotonic seconds of the last frame received
    path_totals: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.input_rate = RateMeter(self.window)
        self.output_rate = RateMeter(self.window)
        # frames the worker finished with: published, rejected or failed (not dropped)
        self.handled_rate = RateMeter(self.window)
        self.latency_ms = RollingWindow(self.window)  # input stamp -> publish
        self.inference_ms = RollingWindow(self.window)
        self.overhead_ms = RollingWindow(self.window)  # decode + publish, no network
        self.overhead_cpu_ms = RollingWindow(self.window)  # the same, CPU time of the worker
        self.wait_ms = RollingWindow(self.window)  # mailbox wait: at most one inference
        self.label_age = RollingWindow(self.window)  # frames since the labels were computed

    def on_received(self, now: float, replaced_pending: bool, lost_before: int = 0) -> None:
        with self._lock:
            self.received += 1
            self.last_input = now
            self.lost += lost_before
            self.input_rate.tick(now)
            if replaced_pending:
                self.dropped += 1

    def on_rejected(self, reason: str, now: float | None = None) -> None:
        with self._lock:
            self.rejected += 1
            if now is not None:
                self.handled_rate.tick(now)
            self.reject_reasons[ReasonThrottle.kind(reason)] += 1
            self.last_error = reason
            self.last_rejected = reason

    def on_listening(self, now: float | None) -> None:
        """The node subscribed at ``now`` (monotonic seconds), or unsubscribed (None)."""
        with self._lock:
            self.listening_since = now

    def _input_idle_s(self, now: float) -> float:
        """Seconds without a frame while subscribed (since the subscription if none came
        since); NaN while not subscribed. The caller holds the lock."""
        if self.listening_since is None:
            return math.nan
        last = self.listening_since
        if self.last_input is not None and self.last_input > last:
            last = self.last_input
        return max(0.0, now - last)

    def on_started(self, waited_s: float) -> None:
        """A frame left the mailbox after ``waited_s`` seconds (receipt to processing)."""
        with self._lock:
            self.wait_ms.add(waited_s * 1e3)

    def on_failed(self, reason: str, now: float | None = None) -> None:
        with self._lock:
            self.failed += 1
            if now is not None:
                self.handled_rate.tick(now)
            self.last_error = reason

    def on_processed(self, now: float, latency_ms: float, inference_ms: float,
                     overhead_ms: float, path_mix: dict[str, float],
                     overhead_cpu_ms: float = float("nan"),
                     label_age: int | None = None) -> None:
        with self._lock:
            self.processed += 1
            self.output_rate.tick(now)
            self.handled_rate.tick(now)
            if latency_ms == latency_ms:  # NaN: no clock to measure it against
                self.latency_ms.add(latency_ms)
            self.inference_ms.add(inference_ms)
            self.overhead_ms.add(overhead_ms)
            if overhead_cpu_ms == overhead_cpu_ms:  # not NaN
                self.overhead_cpu_ms.add(overhead_cpu_ms)
            for path, share in path_mix.items():
                self.path_totals[path] += share
            if label_age is not None:
                self.label_age.add(label_age)

    def snapshot(self, now: float) -> dict[str, float | int | str]:
        """Every figure the diagnostics report, as plain values."""
        with self._lock:
            total = sum(self.path_totals.values()) or 1.0
            ages = ({"label_age_p50_frames": self.label_age.percentile(50),
                     "label_age_max_frames": self.label_age.percentile(100)}
                    if len(self.label_age) else {})
            return {
                "frames_received": self.received,
                "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "frames_lost": self.lost,
                "frames_rejected": self.rejected,
                "frames_failed": self.failed,
                "input_rate_hz": self.input_rate.rate(now),
                "input_idle_s": self._input_idle_s(now),
                "output_rate_hz": self.output_rate.rate(now),
                "handled_rate_hz": self.handled_rate.rate(now),
                "latency_p50_ms": self.latency_ms.percentile(50),
                "latency_p95_ms": self.latency_ms.percentile(95),
                "inference_p50_ms": self.inference_ms.percentile(50),
                "inference_p95_ms": self.inference_ms.percentile(95),
                "overhead_p50_ms": self.overhead_ms.percentile(50),
                "overhead_p95_ms": self.overhead_ms.percentile(95),
                "overhead_cpu_p50_ms": self.overhead_cpu_ms.percentile(50),
                "overhead_cpu_p95_ms": self.overhead_cpu_ms.percentile(95),
                "wait_p95_ms": self.wait_ms.percentile(95),
                "wait_max_ms": self.wait_ms.percentile(100),
                "path_full": self.path_totals["full"] / total,
                "path_low": self.path_totals["low"] / total,
                "path_reuse": self.path_totals["reuse"] / total,
                **ages,
                "last_error": self.last_error,
            }

    def reset_rolling(self) -> None:
        """Forget rates and percentiles (counters stay cumulative)."""
        with self._lock:
            self.__post_init__()
