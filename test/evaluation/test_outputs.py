"""Overlay video and labels bag: written during a run and readable back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from eval_cases import TRUTH, FakeEngine, tiny_source

from seg_accel_ros import bags, image_codec
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.outputs import LabelsBag, OverlayVideo, sample_indices
from seg_accel_ros.evaluation.scoring import FrameOutcome
from seg_accel_ros.evaluation.sources import EvalFrame

PALETTE = ((255, 0, 0), (0, 0, 255))


def _frames(count: int = 3, size: tuple[int, int] = (64, 48)):
    rng = np.random.default_rng(5)
    for i in range(count):
        rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        labels = (np.arange(size[0])[None, :].repeat(size[1], 0) >= size[0] // 2).astype(
            np.uint8)
        path_map = np.full((size[1], size[0]), 2 - i % 2, np.uint8)
        yield (EvalFrame(i, 1_000_000_000 + i * 100_000_000, 5 + i, rgb),
               FrameOutcome(labels, path_map, {"full": 1.0 - 0.5 * (i % 2)}, time_ms=3.0))


def test_overlay_video_is_readable_back(tmp_path: Path) -> None:
    video = OverlayVideo(tmp_path / "v" / "overlay.mp4", 10.0, PALETTE)
    for frame, outcome in _frames():
        video.add(frame, outcome)
    video.close()
    cap = cv2.VideoCapture(str(tmp_path / "v" / "overlay.mp4"))
    shapes = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        shapes.append(bgr.shape)
    assert shapes == [(48, 3 * 64, 3)] * 3


def test_labels_bag_has_the_outputs_with_the_input_stamps(tmp_path: Path) -> None:
    bag = LabelsBag(tmp_path / "labels", PALETTE, frame_id="cam")
    written = list(_frames())
    for frame, outcome in written:
        bag.add(frame, outcome)
    bag.close()
    with bags.BagReader(tmp_path / "labels") as reader:
        assert {t.name: t.count for t in reader.topics} == {
            "/seg_accel_node/labels": 3, "/seg_accel_node/labels_color": 3,
            "/seg_accel_node/path_map": 3}
        got: dict[str, list] = {}
        for topic, time_ns, msg in reader.messages():
            got.setdefault(topic, []).append((time_ns, msg))
    for (frame, outcome), (time_ns, msg) in zip(written, got["/seg_accel_node/labels"],
                                                strict=True):
        assert time_ns == frame.time_ns
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == frame.stamp_ns
        assert msg.encoding == "mono8" and msg.header.frame_id == "cam"
        np.testing.assert_array_equal(image_codec.decode_image(msg), outcome.labels)
    color = got["/seg_accel_node/labels_color"][0][1]
    assert color.encoding == "rgb8"
    np.testing.assert_array_equal(image_codec.decode_image(color)[0, -1], PALETTE[1])
    path_map = image_codec.decode_image(got["/seg_accel_node/path_map"][1][1])
    assert path_map.max() == 1


def test_run_offline_feeds_the_sinks_with_the_primary_run(tmp_path: Path) -> None:
    bag = LabelsBag(tmp_path / "labels", PALETTE)
    run_offline(tiny_source(), [EngineConfig(mode="blocks")], engine_factory=FakeEngine,
                sinks=[bag])
    bag.close()
    assert bag.counts["/seg_accel_node/labels"] == len(TRUTH)


def test_sample_indices_spread_over_the_run() -> None:
    assert sample_indices(100) == [0, 50, 99]
    assert sample_indices(2) == [0, 1]
    assert sample_indices(None) == [0, 1, 2]
    assert sample_indices(10, 4) == [0, 3, 6, 9]
