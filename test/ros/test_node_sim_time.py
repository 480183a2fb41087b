"""Simulated time, as when a bag is replayed with `ros2 bag play --clock` and the node runs with
`use_sim_time:=true`: the latency in the diagnostics is measured on the /clock time, and before
the first /clock message (the node's clock still reads 0) frames are segmented and counted but
give no latency, instead of one of minus the stamp."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import FrameSender, diagnostics_of, start_node
from rosgraph_msgs.msg import Clock

NODE = "seg_accel_sim_time"
STAMP = 1000.3  # frames' header stamps (s)
CLOCK = 1000.5  # the simulated time published on /clock (s): 200 ms after the stamps


@pytest.fixture(scope="module")
def node(dds_env, tmp_path_factory):
    proc = start_node(dds_env, tmp_path_factory.mktemp("sim_time") / "node.log",
                      {"autostart": True, "use_sim_time": True, "warmup_frames": 0,
                       "qos_reliability": "reliable", "qos_depth": 10}, name=NODE)
    yield proc
    proc.stop()


def _diagnostics(probe, frames: int) -> dict[str, str]:
    """The node's latest diagnostics once they count ``frames`` processed frames."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for msg in reversed(probe.collect(DiagnosticArray, "/diagnostics", 2, timeout=5)):
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if diagnostics_of(status, NODE) and int(values["frames_processed"]) >= frames:
                    return values
    raise AssertionError(f"no diagnostics counting {frames} frames")


def test_latency_is_measured_on_the_simulated_clock(node, probe):
    camera = FrameSender(probe, NODE)
    frame = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    try:
        for i in range(2):  # no /clock yet
            assert camera.send(frame, STAMP + i * 0.01) is not None, node.output()
        before = _diagnostics(probe, 2)
        assert math.isnan(float(before["latency_p50_ms"])), before

        clock = probe.node.create_publisher(Clock, "/clock", 10)
        tick = probe.node.create_timer(0.05, lambda: clock.publish(
            Clock(clock=_time_msg(CLOCK))))
        time.sleep(1.0)  # the node's time source takes the first /clock message
        for _ in range(3):
            assert camera.send(frame, STAMP) is not None, node.output()
        after = _diagnostics(probe, 5)
        probe.node.destroy_timer(tick)
        probe.node.destroy_publisher(clock)
    finally:
        camera.close()
    assert int(after["frames_processed"]) == 5
    assert float(after["latency_p50_ms"]) == pytest.approx(200.0, abs=0.01), after
    assert float(after["latency_p95_ms"]) == pytest.approx(200.0, abs=0.01), after


def _time_msg(seconds: float):
    from builtin_interfaces.msg import Time

    return Time(sec=int(seconds), nanosec=round(seconds % 1 * 1e9))
