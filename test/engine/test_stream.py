"""StreamMonitor: the reasons temporal state must be reset."""

from __future__ import annotations

import pytest

from seg_accel_ros.engine.stream import StreamMonitor


def test_continuous_stream_needs_no_reset():
    monitor = StreamMonitor(max_gap_s=0.5)
    assert [monitor.check(t / 30, (720, 1280, 3)) for t in range(10)] == [None] * 10


@pytest.mark.parametrize("stamp, shape, reason", [
    (1.0, (360, 640, 3), "resolution changed"),
    (0.5, (720, 1280, 3), "backwards"),
    (1.0, (720, 1280, 3), "repeated"),
    (3.0, (720, 1280, 3), "gap"),
])
def test_breaks_are_reported(stamp, shape, reason):
    monitor = StreamMonitor(max_gap_s=1.0)
    monitor.check(1.0, (720, 1280, 3))
    assert reason in monitor.check(stamp, shape)
