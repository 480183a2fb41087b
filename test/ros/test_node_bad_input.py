"""Bad camera input: the node logs a clear reason, counts the frame as rejected, skips it and
keeps running (it still segments the next good frame)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import qos_profile_sensor_data
from ros_harness import start_node
from sensor_msgs.msg import CompressedImage, Image

NODE = "seg_accel_bad_input"


def _image(encoding: str, height: int, width: int, step: int, data: bytes, stamp: int) -> Image:
    msg = Image(encoding=encoding, height=height, width=width, step=step, data=data)
    msg.header.stamp.sec = stamp
    return msg


GOOD = np.full((48, 64, 3), 120, np.uint8).tobytes()
BAD_FRAMES = [
    ("unsupported encoding", lambda s: _image("hsv8", 48, 64, 192, GOOD, s), "encoding"),
    ("step too small", lambda s: _image("rgb8", 48, 64, 100, GOOD, s), "step"),
    ("data too short", lambda s: _image("rgb8", 48, 64, 192, GOOD[:1000], s), "data"),
    ("zero width", lambda s: _image("rgb8", 48, 0, 0, b"", s), "empty"),
    ("too many pixels", lambda s: _image("mono8", 3000, 3000, 3000, bytes(9_000_000), s),
     "max_pixels"),
]


@pytest.fixture(scope="module")
def node(dds_env, tmp_path_factory):
    proc = start_node(dds_env, tmp_path_factory.mktemp("bad") / "node.log",
                      {"autostart": True, "warmup_frames": 0, "max_pixels": 1_000_000,
                       "qos_reliability": "reliable", "qos_depth": 10}, name=NODE)
    yield proc
    proc.stop()


def _latest_diagnostics(probe) -> dict[str, str]:
    msgs = probe.collect(DiagnosticArray, "/diagnostics", 2, timeout=5)
    for msg in reversed(msgs):
        for status in msg.status:
            if status.name.startswith(NODE):
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_bad_frames_are_rejected_counted_and_explained(node, probe):
    image_pub = probe.node.create_publisher(Image, "image", 10)
    compressed_pub = probe.node.create_publisher(CompressedImage, "image/compressed",
                                                 qos_profile_sensor_data)
    deadline = time.monotonic() + 60
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    for i, (_, make, _) in enumerate(BAD_FRAMES):
        image_pub.publish(make(10 + i))
        time.sleep(0.3)
    time.sleep(1.0)
    image_pub.publish(_image("rgb8", 48, 64, 192, GOOD, 100))
    labels = probe.collect(Image, f"/{NODE}/labels", 1, timeout=30)
    assert labels and labels[0].header.stamp.sec == 100, node.output()
    time.sleep(1.2)
    values = _latest_diagnostics(probe)
    assert int(values["frames_rejected"]) == len(BAD_FRAMES), values
    assert int(values["frames_processed"]) >= 1
    log = node.output()
    for _, _, reason in BAD_FRAMES:
        assert reason in log, f"no log line mentions {reason!r}:\n{log}"
    assert node.alive()
    probe.node.destroy_publisher(compressed_pub)
    probe.node.destroy_publisher(image_pub)
