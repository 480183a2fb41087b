"""Evaluation inputs: video, image folder (CamVid layout with labels), rosbag2, CamVid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_accel_ros import bags
from seg_accel_ros.evaluation.sources import is_bag, open_eval_source
from seg_accel_ros.frame_sources import generated_frames


def write_video(path: Path, count: int = 5, size: tuple[int, int] = (96, 64),
                fps: float = 12.5) -> list[np.ndarray]:
    frames = list(generated_frames(size, count=count, speed=8))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return frames


def write_camvid_folder(root: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> Path:
    """root/seq with images and root/seqannot with labels 0..11 (CamVid layout)."""
    rng = np.random.default_rng(3)
    (root / "seq").mkdir(parents=True)
    (root / "seqannot").mkdir()
    for name in names:
        cv2.imwrite(str(root / "seq" / name),
                    rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        cv2.imwrite(str(root / "seqannot" / name),
                    rng.integers(0, 12, (size[1], size[0]), dtype=np.uint8))
    return root / "seq"


def test_video_frames_are_stamped_from_the_frame_rate(tmp_path: Path) -> None:
    write_video(tmp_path / "clip.mp4")
    source = open_eval_source(str(tmp_path / "clip.mp4"))
    assert source.kind == "video" and source.length == 5 and not source.has_labels
    assert source.rate_hz == pytest.approx(12.5)
    frames = list(source.frames())
    assert [f.stamp_ns for f in frames] == [i * 80_000_000 for i in range(5)]
    assert frames[0].rgb.shape == (64, 96, 3) and frames[0].labels is None
    resized = open_eval_source(str(tmp_path / "clip.mp4"), size=(48, 32), fps=5.0)
    got = list(resized.frames(max_frames=2))
    assert len(got) == 2 and got[1].rgb.shape == (32, 48, 3)
    assert got[1].stamp_ns == 200_000_000


def test_image_folder_finds_camvid_labels_and_name_timing(tmp_path: Path) -> None:
    folder = write_camvid_folder(tmp_path, ["0016E5_07959.png", "0016E5_07961.png",
                                            "0016E5_07963.png"])
    source = open_eval_source(str(folder), size=(20, 15))
    assert source.kind == "folder" and source.has_labels and source.length == 3
    assert source.rate_hz == pytest.approx(15.0)
    frames = list(source.frames())
    assert [f.stamp_ns for f in frames] == [0, 66_666_667, 133_333_333]
    assert frames[0].labels.shape == (15, 20) and frames[0].labels.max() <= 11
    assert frames[0].name == "0016E5_07959.png"


def test_image_folder_without_labels_uses_the_given_rate(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    for name in ("b.png", "a.png"):
        cv2.imwrite(str(tmp_path / "plain" / name), np.zeros((8, 8, 3), np.uint8))
    source = open_eval_source(str(tmp_path / "plain"), fps=4.0)
    assert not source.has_labels
    assert [(f.name, f.stamp_ns) for f in source.frames()] == [("a.png", 0),
                                                               ("b.png", 250_000_000)]


def test_bag_frames_keep_their_header_stamps_and_frame_id(tmp_path: Path) -> None:
    frames = list(generated_frames((32, 24), count=3))
    stamps = [1_700_000_000_000_000_000 + i * 50_000_000 for i in range(3)]
    bags.write_frames(tmp_path / "in", frames, stamps, topic="/cam/image", frame_id="cam0")
    assert is_bag(tmp_path / "in")
    source = open_eval_source(str(tmp_path / "in"))
    assert source.kind == "bag" and source.topic == "/cam/image" and source.frame_id == "cam0"
    assert source.rate_hz == pytest.approx(20.0)
    got = list(source.frames())
    assert [f.stamp_ns for f in got] == stamps and [f.time_ns for f in got] == stamps
    np.testing.assert_array_equal(got[2].rgb, frames[2])


def test_options_a_source_would_ignore_are_refused(tmp_path: Path) -> None:
    bags.write_frames(tmp_path / "bag", list(generated_frames((32, 24), count=2)), [0, 1],
                      topic="/cam/image")
    (tmp_path / "plain").mkdir()
    cv2.imwrite(str(tmp_path / "plain" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="a bag source keeps the stamps it has"):
        open_eval_source(str(tmp_path / "bag"), fps=10.0)
    with pytest.raises(ValueError, match="a camvid source keeps the stamps it has"):
        open_eval_source("camvid:temporal", camvid_root=tmp_path, fps=10.0)
    with pytest.raises(ValueError, match="a topic applies to a bag, not to a folder"):
        open_eval_source(str(tmp_path / "plain"), topic="/cam/image")
    with pytest.raises(ValueError, match="labels folder applies to an image folder, not to a bag"):
        open_eval_source(str(tmp_path / "bag"), labels_dir=tmp_path)
    assert open_eval_source(str(tmp_path / "bag"), topic="/cam/image").topic == "/cam/image"


def test_missing_inputs_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no bag, video file or image folder"):
        open_eval_source(str(tmp_path / "nothing.mp4"))
    with pytest.raises(FileNotFoundError, match="not found"):
        open_eval_source("camvid:test", camvid_root=tmp_path)
    with pytest.raises(ValueError, match="FIRST-LAST"):
        write_camvid_folder(tmp_path / "cv", ["Seq_001.png"])
        open_eval_source("camvid:test/Seq:1", camvid_root=tmp_path / "cv")


@pytest.mark.shared
def test_camvid_temporal_segment_has_101_labelled_frames_at_15_hz(camvid_root: Path) -> None:
    source = open_eval_source("camvid:temporal", camvid_root=camvid_root)
    assert source.length == 101 and source.has_labels
    assert source.rate_hz == pytest.approx(15.0)
    first = next(iter(source.frames(1)))
    assert first.rgb.shape == (360, 480, 3) and first.labels.shape == (360, 480)
    sequence = open_eval_source("camvid:val/0016E5:7959-7963", camvid_root=camvid_root)
    assert sequence.length == 3
