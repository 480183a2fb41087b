"""Bad camera input: the node logs a clear reason, counts the frame as rejected, skips it and
keeps running (it still segments the next good frame); its diagnostics WARN with the reason,
and WARN again when no input comes at all. Raw images and corrupt or truncated JPEG / PNG in
CompressedImage messages."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from ros_harness import DiagnosticsRecorder, diagnostics_of, start_node
from sensor_msgs.msg import CompressedImage, Image

from seg_accel_ros.image_codec import encode_compressed

NODE = "seg_accel_bad_input"
INPUT_TIMEOUT_S = 1.5


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
                       "qos_reliability": "reliable", "qos_depth": 10,
                       "diagnostics_period": 0.2, "input_timeout": INPUT_TIMEOUT_S}, name=NODE)
    yield proc
    proc.stop()


def _latest_diagnostics(probe, node: str = NODE) -> dict[str, str]:
    msgs = probe.collect(DiagnosticArray, "/diagnostics", 4, timeout=5)
    for msg in reversed(msgs):
        for status in msg.status:
            if diagnostics_of(status, node):
                return {kv.key: kv.value for kv in status.values}
    return {}


def _wait_for_subscriber(pub, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)


class RejectionCount:
    """The node's ``frames_rejected`` as its diagnostics report it, followed live."""

    def __init__(self, probe, node: str) -> None:
        self.probe, self.node = probe, node
        self.value: int | None = None  # until the first report arrives
        self.sub = probe.node.create_subscription(DiagnosticArray, "/diagnostics",
                                                  self._on_msg, 10)

    def _on_msg(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if diagnostics_of(status, self.node):
                self.value = int({kv.key: kv.value for kv in status.values}["frames_rejected"])

    def publish_each(self, frames: list, publish) -> None:
        """Publish the frames one by one, the next only once the node has counted this one:
        a frame still waiting in the latest-wins mailbox when the next arrives would be
        dropped (and counted so), not rejected."""
        deadline = time.monotonic() + 30
        while self.value is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.value is not None, f"no diagnostics from {self.node}"
        start = self.value
        for i, frame in enumerate(frames):
            publish(frame)
            deadline = time.monotonic() + 30
            while self.value < start + i + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert self.value == start + i + 1, (i, self.value)

    def close(self) -> None:
        self.probe.node.destroy_subscription(self.sub)


def test_bad_frames_are_rejected_counted_and_explained(node, probe):
    image_pub = probe.node.create_publisher(Image, "image", 10)
    compressed_pub = probe.node.create_publisher(CompressedImage, "image/compressed",
                                                 qos_profile_sensor_data)
    _wait_for_subscriber(image_pub)
    rejected = RejectionCount(probe, NODE)
    try:
        rejected.publish_each([make(10 + i) for i, (_, make, _) in enumerate(BAD_FRAMES)],
                              image_pub.publish)
    finally:
        rejected.close()
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


def test_diagnostics_name_rejected_input_then_missing_input(node, probe):
    """A camera whose every frame is rejected reads WARN with the reason, not "cannot keep
    up"; once frames flow again the report turns OK, and once they stop it WARNs that no
    input comes, after ``input_timeout``."""
    pub = probe.node.create_publisher(Image, "image", 10)
    diagnostics = DiagnosticsRecorder(probe, NODE)
    try:
        _wait_for_subscriber(pub)
        for i in range(5):
            pub.publish(_image("hsv8", 48, 64, 192, GOOD, 200 + i))
            time.sleep(0.05)
        warned = diagnostics.wait_for(lambda s: s.message.startswith("rejecting input"))
        assert warned is not None, node.output()
        assert warned.level == DiagnosticStatus.WARN
        assert "since the last report): unsupported image encoding 'hsv8'" in warned.message

        for i in range(10):  # good frames, as fast as the node labels them
            pub.publish(_image("rgb8", 48, 64, 192, GOOD, 300 + i))
            time.sleep(0.1)
        ok = diagnostics.wait_for(lambda s: s.level == DiagnosticStatus.OK, timeout=5.0)
        assert ok is not None and ok.message == "running", [
            s.message for s in diagnostics.statuses[-5:]]

        started = time.monotonic()
        idle = diagnostics.wait_for(lambda s: s.message.startswith("no input"), timeout=10.0)
        assert idle is not None, [s.message for s in diagnostics.statuses[-5:]]
        assert time.monotonic() - started >= INPUT_TIMEOUT_S - 0.5
        assert idle.level == DiagnosticStatus.WARN
        assert idle.message.startswith("no input on /image for "), idle.message
        values = {kv.key: kv.value for kv in idle.values}
        assert float(values["input_idle_s"]) >= INPUT_TIMEOUT_S
    finally:
        diagnostics.close()
        probe.node.destroy_publisher(pub)
    assert node.alive()


# ------------------------------------------------------------------- compressed input

COMPRESSED_NODE = "seg_accel_bad_compressed"
RGB = np.dstack([*np.meshgrid(np.linspace(0, 255, 64), np.linspace(0, 255, 48)),
                 np.full((48, 64), 90.0)]).astype(np.uint8)
JPEG = encode_compressed(RGB, "rgb8", "jpeg").data
PNG = encode_compressed(RGB, "rgb8", "png").data
BAD_COMPRESSED = [  # (what, format, data, reason in the log)
    ("JPEG cut in half", "jpeg", JPEG[: len(JPEG) // 2], "truncated JPEG"),
    ("JPEG without its end marker", "rgb8; jpeg compressed bgr8", JPEG[:-2], "truncated JPEG"),
    ("PNG cut in half", "png", PNG[: len(PNG) // 2], "cannot decode compressed image"),
    ("PNG with a zeroed chunk", "png", PNG[:30] + bytes(64) + PNG[94:],
     "cannot decode compressed image"),
    ("not an image at all", "jpeg", b"<html>404 not found</html>",
     "cannot decode compressed image"),
    ("no data", "png", b"", "has no data"),
]


@pytest.fixture(scope="module")
def compressed_node(dds_env, tmp_path_factory):
    proc = start_node(dds_env, tmp_path_factory.mktemp("bad_compressed") / "node.log",
                      {"autostart": True, "warmup_frames": 0, "input_transport": "compressed",
                       "qos_reliability": "reliable", "qos_depth": 10,
                       "diagnostics_period": 0.2}, name=COMPRESSED_NODE)
    yield proc
    proc.stop()


def _compressed(fmt: str, data: bytes, stamp: int) -> CompressedImage:
    msg = CompressedImage(format=fmt, data=data)
    msg.header.stamp.sec = stamp
    return msg


def test_corrupt_and_truncated_jpeg_png_are_rejected_counted_and_explained(compressed_node,
                                                                             probe):
    pub = probe.node.create_publisher(CompressedImage, "image/compressed", 10)
    labels: list[Image] = []
    sub = probe.node.create_subscription(Image, f"/{COMPRESSED_NODE}/labels", labels.append, 10)
    rejected = RejectionCount(probe, COMPRESSED_NODE)
    try:
        _wait_for_subscriber(pub)
        rejected.publish_each([_compressed(fmt, data, 10 + i)
                               for i, (_, fmt, data, _) in enumerate(BAD_COMPRESSED)],
                              pub.publish)
        for k, (fmt, data) in enumerate((("jpeg", JPEG), ("png", PNG))):
            pub.publish(_compressed(fmt, data, 100 + k))  # the next good frames are segmented
            deadline = time.monotonic() + 30
            while len(labels) <= k and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [m.header.stamp.sec for m in labels] == [100, 101], compressed_node.output()
        assert (labels[0].height, labels[0].width) == (48, 64)
        time.sleep(1.2)
        values = _latest_diagnostics(probe, COMPRESSED_NODE)
    finally:
        rejected.close()
        probe.node.destroy_subscription(sub)
        probe.node.destroy_publisher(pub)
    assert int(values["frames_rejected"]) == len(BAD_COMPRESSED), values
    assert int(values["frames_processed"]) == 2 and int(values["frames_failed"]) == 0
    log = compressed_node.output()
    for what, _, _, reason in BAD_COMPRESSED:
        assert reason in log, f"no log line explains the {what} ({reason!r}):\n{log}"
    assert compressed_node.alive()
