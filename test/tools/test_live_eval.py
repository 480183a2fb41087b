"""What the live evaluation replays into the node: a bag's own messages when they fit."""

from __future__ import annotations

from pathlib import Path

from seg_accel_ros import bags
from seg_accel_ros.evaluation.sources import open_eval_source
from seg_accel_ros.frame_sources import generated_frames
from seg_accel_ros.tools.live_eval import INPUT_TOPIC, write_replay_bag

STAMPS = [1_700_000_000_000_000_000 + i * 100_000_000 for i in range(3)]


def _jpeg_bag(path: Path) -> Path:
    bags.write_frames(path, generated_frames((96, 64), count=3), STAMPS, encoding="jpeg")
    return path


def _raw(path: Path) -> list[bags.RawMessage]:
    with bags.BagReader(path) as bag:
        return list(bag.raw_messages())


def test_a_bag_at_its_own_size_is_replayed_byte_for_byte(tmp_path: Path) -> None:
    recorded = _jpeg_bag(tmp_path / "drive")
    replay = write_replay_bag(open_eval_source(str(recorded)), tmp_path / "replay", 2)
    assert replay.transport == "compressed"
    assert replay.topic == INPUT_TOPIC + "/compressed"
    assert replay.stamps == STAMPS[:2]
    original, copied = _raw(recorded)[:2], _raw(tmp_path / "replay")
    assert [m.data for m in copied] == [m.data for m in original]
    assert [m.time_ns for m in copied] == [m.time_ns for m in original]


def test_a_resized_bag_is_replayed_as_rgb8_images(tmp_path: Path) -> None:
    recorded = _jpeg_bag(tmp_path / "drive")
    source = open_eval_source(str(recorded), size=(48, 32))
    replay = write_replay_bag(source, tmp_path / "replay", None)
    assert (replay.transport, replay.topic, replay.msgtype) == ("raw", INPUT_TOPIC,
                                                                bags.IMAGE_TYPE)
    assert replay.stamps == STAMPS
    with bags.BagReader(tmp_path / "replay") as bag:
        assert [f.rgb.shape for f in bag.frames()] == [(32, 48, 3)] * 3
