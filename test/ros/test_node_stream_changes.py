"""Breaks in the input stream through the real node: a new resolution mid-stream, stamps going
backwards or repeating (a looping bag) and a long gap (a paused camera). Each one resets the
temporal state (counted as `stream_resets` in the diagnostics, explained in the log), nothing
crashes, and every frame is segmented at its own size.

The node runs in `blocks` mode, whose policy uses the previous frame's prediction: the state that
a resolution change must not carry over."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import FrameSender, diagnostics_of, start_node

NODE = "seg_accel_stream"


@pytest.fixture(scope="module")
def node(dds_env, tmp_path_factory):
    proc = start_node(dds_env, tmp_path_factory.mktemp("stream") / "node.log",
                      {"autostart": True, "mode": "blocks", "warmup_frames": 0,
                       "qos_reliability": "reliable", "qos_depth": 10}, name=NODE)
    yield proc
    proc.stop()


def _stream_resets(probe) -> int:
    for msg in reversed(probe.collect(DiagnosticArray, "/diagnostics", 3, timeout=5)):
        for status in msg.status:
            if diagnostics_of(status, NODE):
                return int({kv.key: kv.value for kv in status.values}["stream_resets"])
    raise AssertionError("no diagnostics from the node")


# (stamp s, height, width, why the temporal state must reset or None)
STREAM = [
    (200.0, 128, 256, None),
    (200.1, 128, 256, None),
    (200.2, 128, 256, None),
    (200.3, 192, 320, "resolution changed from (128, 256) to (192, 320)"),
    (200.4, 192, 320, None),
    (200.0, 192, 320, "stamp went backwards by 0.400 s"),  # the bag loops
    (200.0, 192, 320, "repeated stamp"),
    (200.1, 192, 320, None),
    (205.1, 192, 320, "gap of 5.000 s between frames"),  # the camera paused
    (205.2, 128, 256, "resolution changed from (192, 320) to (128, 256)"),
    (205.3, 128, 256, None),
]


def test_stream_breaks_reset_temporal_state_and_every_frame_is_segmented(node, probe):
    camera = FrameSender(probe, NODE)
    rng = np.random.default_rng(0)
    try:
        for stamp, height, width, reset in STREAM:
            labels = camera.send(rng.integers(0, 255, (height, width, 3), np.uint8), stamp)
            assert labels is not None, f"no labels for the frame stamped {stamp}"
            assert (labels.height, labels.width) == (height, width)
            stamp_ns = labels.header.stamp.sec * 10**9 + labels.header.stamp.nanosec
            assert stamp_ns == round(stamp * 1e9)
            if reset:
                time.sleep(1.1)  # the reset log line is throttled to one per second
        time.sleep(1.2)  # one diagnostics period
        resets = _stream_resets(probe)
    finally:
        camera.close()
    expected = [why for *_, why in STREAM if why]
    assert resets == len(expected)
    log = node.output()
    for why in expected:
        assert f"temporal state reset: {why}" in log, log
    assert node.alive()
