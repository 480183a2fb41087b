"""seg_accel_replay across processes with real DDS: recorded timing (and --rate), bit-identical
messages, a bag -> ROS -> bag round trip, --remap, --start-offset, --clock, --loop, and errors."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")

from rclpy.serialization import deserialize_message  # noqa: E402
from rclpy.subscription import MessageInfo  # noqa: E402
from ros_harness import ManagedProcess, Probe  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from seg_accel_ros import bags  # noqa: E402
from seg_accel_ros.frame_sources import generated_frames  # noqa: E402
from seg_accel_ros.tools import replay, to_bag  # noqa: E402

START = 1_650_000_000 * 10**9
TOPIC = "/camera/image_raw"
_DDS_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")


def make_bag(path: Path, count: int, rate: float, storage: str = "mcap") -> Path:
    """``count`` distinct generated frames at ``rate`` Hz from START on TOPIC."""
    stamps = [START + round(i * 1e9 / rate) for i in range(count)]
    bags.write_frames(path, generated_frames((64, 48), count=count), stamps, topic=TOPIC,
                      storage=storage)
    return path


@pytest.fixture(scope="module")
def bag50(tmp_path_factory) -> Path:
    """100 frames at 50 Hz (2 s)."""
    return make_bag(tmp_path_factory.mktemp("bags") / "bag50", 100, 50.0)


def stored(path: Path) -> list[bags.RawMessage]:
    with bags.BagReader(path) as bag:
        return list(bag.raw_messages())


class Recorder:
    """Raw subscription on the probe: per message, the time the replay wrote it (the DDS
    source timestamp, in seconds) and its CDR bytes. Rates are the replay's pacing, not when
    this process, which may be starved of CPU on a loaded machine, got round to reading."""

    def __init__(self, probe: Probe, msg_type, topic: str) -> None:
        self.probe, self.received = probe, []
        self._lock = threading.Lock()
        # deep reader history: a test process starved of CPU must not drop reliable samples
        self.sub = probe.node.create_subscription(msg_type, topic, self._on_msg, 500, raw=True)

    def _on_msg(self, data: bytes, info: MessageInfo) -> None:
        with self._lock:
            self.received.append((info["source_timestamp"] * 1e-9, data))

    def wait(self, count: int, timeout: float) -> list[tuple[float, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.probe.node.destroy_subscription(self.sub)


def start_replay(env: dict[str, str], log: Path, *args: str) -> ManagedProcess:
    # The writer sees the reader first; 1 s more lets the reader match the writer too, so the
    # first (volatile) sample is not dropped on a loaded machine.
    return ManagedProcess([sys.executable, "-m", "seg_accel_ros.tools.replay", *args,
                           "--wait-for-subscribers", "20", "--delay", "1.0"], env, log)


def same_cdr(sent: bytes, received: bytes) -> bool:
    """Equal bytes, up to the zeros Fast DDS appends between processes to pad the payload to a
    multiple of 4 (no deserializer reads them; `ros2 bag record` stores them too)."""
    pad = len(received) - len(sent)
    return 0 <= pad < 4 and received[:len(sent)] == sent and not any(received[len(sent):])


def fitted_rate(times: list[float]) -> float:
    """Messages per second from a least-squares line through the receive times."""
    slope = np.polyfit(np.arange(len(times)), np.asarray(times), 1)[0]
    return 1.0 / slope


def play_and_receive(env, probe, tmp_path, bag: Path, count: int, *args: str,
                     topic: str = TOPIC, msg_type=Image, while_playing=None
                     ) -> tuple[list, str]:
    recorder = Recorder(probe, msg_type, topic)
    proc = start_replay(env, tmp_path / "replay.log", str(bag), *args)
    try:
        if while_playing is not None and recorder.wait(1, timeout=20.0):
            while_playing()
        received = recorder.wait(count, timeout=20.0)
        proc.proc.wait(timeout=15.0)
    finally:
        code = proc.stop()
        recorder.close()
    output = proc.output()
    assert code == 0, output
    return received, output


@pytest.mark.parametrize("factor", [1.0, 2.0])
def test_replay_keeps_the_recorded_rate_and_the_bytes(dds_env, probe, tmp_path, bag50, factor):
    received, output = play_and_receive(dds_env, probe, tmp_path, bag50, 100,
                                        "--rate", str(factor))
    assert len(received) == 100, output
    sent = stored(bag50)
    assert all(same_cdr(m.data, data) for m, (_, data) in zip(sent, received, strict=True))
    rate = fitted_rate([t for t, _ in received])
    assert rate == pytest.approx(50.0 * factor, rel=0.05), output
    span = received[-1][0] - received[0][0]
    assert span == pytest.approx(99 / (50.0 * factor), rel=0.05)
    assert "100 messages, recorded 50.00 Hz" in output and "1 complete pass" in output


def test_bag_to_ros_to_bag_round_trip(dds_env, probe, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = list(generated_frames((64, 48), count=20, speed=6))
    for i, rgb in enumerate(frames):  # CamVid-style names: 15 Hz from the frame numbers
        cv2.imwrite(str(folder / f"0016E5_{7959 + 2 * i:05d}.png"), rgb[..., ::-1])
    source = tmp_path / "source.bag"
    assert to_bag.main([str(folder), str(source), "--encoding", "png", "--storage", "sqlite3",
                        "--start-time", str(START // 10**9), "--frame-id", "front"]) == 0
    compressed = TOPIC + "/compressed"
    received, output = play_and_receive(dds_env, probe, tmp_path, source, 20,
                                        topic=compressed, msg_type=CompressedImage)
    assert len(received) == 20, output
    recorded = tmp_path / "recorded.bag"
    with bags.BagWriter(recorded, "mcap") as out:
        for wall, data in received:
            out.write_raw(compressed, int(wall * 1e9), data, bags.COMPRESSED_TYPE)
    with bags.BagReader(source) as a, bags.BagReader(recorded) as b:
        original, copy = list(a.frames()), list(b.frames())
        pairs = zip(a.raw_messages(), b.raw_messages(), strict=True)
        assert all(same_cdr(sent.data, got.data) for sent, got in pairs)
    assert [f.stamp_ns for f in copy] == [START + round(i * 2e9 / 30) for i in range(20)]
    for before, after, rgb in zip(original, copy, frames, strict=True):
        assert (after.topic, after.frame_id, after.stamp_ns) == (compressed, "front",
                                                                before.stamp_ns)
        np.testing.assert_array_equal(after.rgb, rgb)


def test_remap_start_offset_and_clock(dds_env, probe, tmp_path, bag50):
    clock = Recorder(probe, Clock, "/clock")
    seen: dict[str, int] = {}

    def count_publishers() -> None:
        seen["original"] = probe.node.count_publishers(TOPIC)
        seen["remapped"] = probe.node.count_publishers("/front/image")

    try:
        received, output = play_and_receive(
            dds_env, probe, tmp_path, bag50, 50, "--remap", f"{TOPIC}:=/front/image",
            "--start-offset", "1.0", "--clock", "100", topic="/front/image",
            while_playing=count_publishers)
    finally:
        clock.close()
    assert len(received) == 50, output
    sent = stored(bag50)[50:]
    assert all(same_cdr(m.data, data) for m, (_, data) in zip(sent, received, strict=True))
    assert seen == {"original": 0, "remapped": 1}
    assert f"{TOPIC} -> /front/image" in output
    ticks = []
    for _, data in clock.received:
        msg = deserialize_message(data, Clock)
        ticks.append(msg.clock.sec * 10**9 + msg.clock.nanosec)
    assert len(ticks) >= 50  # one per message, plus ticks at 100 Hz
    assert ticks == sorted(ticks)
    assert ticks[0] >= START + 10**9 and ticks[-1] <= START + 1_980_000_000


def test_loop_repeats_the_bag_until_interrupted(dds_env, probe, tmp_path):
    bag = make_bag(tmp_path / "short", 10, 50.0, storage="sqlite3")
    messages = [m.data for m in stored(bag)]
    recorder = Recorder(probe, Image, TOPIC)
    proc = start_replay(dds_env, tmp_path / "loop.log", str(bag), "--loop")
    try:
        received = recorder.wait(35, timeout=20.0)
    finally:
        code = proc.stop()
        recorder.close()
    output = proc.output()
    assert code == 0, output
    assert len(received) >= 35, output
    assert all(same_cdr(messages[i % 10], data) for i, (_, data) in enumerate(received[:35]))
    # the loop restarts one frame period after the last message: a steady 50 Hz stream
    assert fitted_rate([t for t, _ in received[:35]]) == pytest.approx(50.0, rel=0.05)
    assert "interrupted" in output
    passes = int(output.split(" complete pass")[0].rsplit(" ", 1)[1])
    assert passes >= 3


def test_bad_input_exits_with_a_reason(dds_env, tmp_path, bag50):
    with pytest.raises(SystemExit, match="no bag at"):
        replay.main([str(tmp_path / "missing")])
    (tmp_path / "plain").mkdir()
    with pytest.raises(SystemExit, match="not a rosbag2 folder"):
        replay.main([str(tmp_path / "plain")])
    chat = tmp_path / "chat"
    with bags.BagWriter(chat) as bag:
        bag.write_message("/chatter", START, bags.typestore().types["std_msgs/msg/String"](
            data="hi"), "std_msgs/msg/String")
    with pytest.raises(SystemExit, match="no sensor_msgs/Image"):
        replay.main([str(chat)])
    with pytest.raises(SystemExit, match="not an image topic"):
        replay.main([str(bag50), "--topics", "/chatter"])
    with pytest.raises(SystemExit, match="not played: /elsewhere"):
        replay.main([str(bag50), "--remap", "/elsewhere:=/x"])
    with pytest.raises(SystemExit, match="past the end"):
        replay.main([str(bag50), "--start-offset", "5"])
    with pytest.raises(SystemExit, match="error: .*(name|topic)"):
        replay.main([str(bag50), "--remap", f"{TOPIC}:=/bad name"])
    for bad in (["--remap", "/a"], ["--rate", "0"], ["--qos", "fast"], ["--clock", "-1"],
                ["--min-subscribers", "2"]):  # without --wait-for-subscribers: no effect
        with pytest.raises(SystemExit) as exit_info:
            replay.main([str(bag50), *bad])
        assert exit_info.value.code == 2


def test_ros_args_are_split_from_our_remap_rules():
    ours, ros = replay.split_ros_args(["bag", "--remap", "/a:=/b", "--ros-args", "-r",
                                       "__node:=player", "--", "--loop"])
    assert ours == ["bag", "--remap", "/a:=/b", "--loop"]
    assert ros == ["--ros-args", "-r", "__node:=player", "--"]
    assert replay.parse_remaps(["a:=/b", "/c:=d"]) == {"/a": "/b", "/c": "/d"}
