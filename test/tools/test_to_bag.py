"""`python -m seg_accel_ros.tools.to_bag`: video files, image folders (CamVid names give the
stamps) and generated frames to rosbag2 with Image or CompressedImage messages."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import shared_path

from seg_accel_ros import bags
from seg_accel_ros.frame_sources import generated_frames
from seg_accel_ros.tools import to_bag

START_S = 1_600_000_000
START = START_S * 10**9


def write_folder(folder, names, size=(40, 30)):
    folder.mkdir()
    frames = list(generated_frames(size, count=len(names), speed=3))
    for name, rgb in zip(names, frames, strict=True):
        cv2.imwrite(str(folder / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return frames


def read_back(path):
    with bags.BagReader(path) as bag:
        return bag.topics, list(bag.frames())


@pytest.mark.parametrize("storage", bags.STORAGES)
def test_generated_frames_at_a_rate(tmp_path, storage, capsys):
    out = tmp_path / "gen.bag"
    code = to_bag.main(["generated", str(out), "--count", "12", "--rate", "15", "--width", "64",
                        "--height", "48", "--storage", storage, "--frame-id", "front",
                        "--start-time", f"{START_S}.000000007", "--topic", "/cam/image_raw"])
    assert code == 0
    assert "wrote 12 frames (64x48, rgb8)" in capsys.readouterr().out
    topics, frames = read_back(out)
    assert topics == [bags.TopicInfo("/cam/image_raw", bags.IMAGE_TYPE, 12)]
    assert [f.time_ns for f in frames] == [START + 7 + round(i * 1e9 / 15) for i in range(12)]
    assert all(f.stamp_ns == f.time_ns and f.frame_id == "front" for f in frames)
    expected = list(generated_frames((64, 48), count=12))
    for frame, rgb in zip(frames, expected, strict=True):
        np.testing.assert_array_equal(frame.rgb, rgb)


def test_camvid_names_give_the_stamps_of_the_30fps_video(tmp_path):
    # two sequences, a 15 Hz run (step 2), a 1 Hz run (step 30) and a long cut (1950 frames)
    names = ["0016E5_07959.png", "0016E5_07961.png", "0016E5_07963.png",
             "Seq05VD_f00000.png", "Seq05VD_f00030.png", "Seq05VD_f01980.png"]
    frames = write_folder(tmp_path / "camvid", names)
    out = tmp_path / "camvid.bag"
    to_bag.main([str(tmp_path / "camvid"), str(out), "--encoding", "png", "--storage", "sqlite3",
                 "--start-time", str(START_S)])
    topics, got = read_back(out)
    assert topics == [bags.TopicInfo("/camera/image_raw/compressed", bags.COMPRESSED_TYPE, 6)]
    # typical step = median of the in-sequence gaps (1/15, 1/15, 1 s) = 1/15 s
    step = 2 / 30
    seconds = [0, step, 2 * step, 3 * step, 3 * step + 1.0, 4 * step + 1.0]
    assert [f.time_ns for f in got] == [START + round(s * 1e9) for s in seconds]
    for frame, rgb in zip(got, frames, strict=True):
        np.testing.assert_array_equal(frame.rgb, rgb)  # PNG is lossless


def test_numbered_times_follow_frame_numbers_and_cut_long_gaps():
    frames = [("0016E5", n) for n in (390, 420, 450, 2400, 2430)] + [("0001TP", 6690)]
    times = to_bag.numbered_times(frames, name_fps=30.0, max_gap=2.0)
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert to_bag.numbered_times(frames, name_fps=30.0, max_gap=100.0)[3] == pytest.approx(67.0)
    assert to_bag.numbered_order(["a_001.png", "b_f002.jpg"]) == [("a", 1), ("b", 2)]
    assert to_bag.numbered_order(["0001.png", "a_002.png"]) is None
    assert to_bag.numbered_order(["a_1.png", "a_01.png"]) is None  # the same frame twice


def test_numbered_sequences_sort_by_number_and_rate_overrides_names(tmp_path):
    write_folder(tmp_path / "seq", ["run_9.png", "run_10.png", "run_100.png"])
    files, times, origin = to_bag.folder_plan(tmp_path / "seq", None, 30.0, 10.0)
    assert [f.name for f in files] == ["run_9.png", "run_10.png", "run_100.png"]
    assert times == pytest.approx([0.0, 1 / 30, 91 / 30]) and "file names" in origin
    files, times, origin = to_bag.folder_plan(tmp_path / "seq", 4.0, 30.0, 10.0)
    assert [f.name for f in files] == ["run_10.png", "run_100.png", "run_9.png"]  # name order
    assert times == [0.0, 0.25, 0.5] and origin == "4 Hz"


def test_plain_names_use_the_rate_and_jpeg_goes_to_compressed(tmp_path):
    frames = write_folder(tmp_path / "plain", ["b.png", "a.png", "c.png"], size=(64, 48))
    out = tmp_path / "plain.bag"
    to_bag.main([str(tmp_path / "plain"), str(out), "--encoding", "jpeg", "--rate", "8",
                 "--start-time", str(START_S)])
    topics, got = read_back(out)
    assert topics[0].name == "/camera/image_raw/compressed"
    assert [f.time_ns for f in got] == [START, START + 125_000_000, START + 250_000_000]
    for frame, rgb in zip(got, [frames[1], frames[0], frames[2]], strict=True):  # a, b, c
        assert np.abs(frame.rgb.astype(int) - rgb.astype(int)).mean() < 6.0


def test_a_video_file_uses_its_frame_rate(tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    for rgb in generated_frames((64, 48), count=5):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "clip.bag"
    to_bag.main([str(video), str(out), "--encoding", "mono8", "--start-time", str(START_S)])
    _, got = read_back(out)
    assert [f.time_ns for f in got] == [START + i * 50_000_000 for i in range(5)]
    assert all(np.array_equal(f.rgb[..., 0], f.rgb[..., 2]) for f in got)  # grey


def test_bad_input_exits_with_a_reason(tmp_path):
    with pytest.raises(SystemExit, match="no video file or image folder"):
        to_bag.main([str(tmp_path / "missing.mp4"), str(tmp_path / "a")])
    assert not (tmp_path / "a").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no images"):
        to_bag.main([str(tmp_path / "empty"), str(tmp_path / "b")])
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x_001.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit, match="cannot decode image"):
        to_bag.main([str(tmp_path / "broken"), str(tmp_path / "c")])
    assert not (tmp_path / "c").exists()
    with pytest.raises(SystemExit, match="exists already"):
        to_bag.main(["generated", str(tmp_path / "broken"), "--count", "1"])
    with pytest.raises(SystemExit, match="invalid topic name"):
        to_bag.main(["generated", str(tmp_path / "d"), "--count", "1", "--topic", "/a b"])
    for bad in (["--rate", "0"], ["--width", "10"], ["--encoding", "yuv422"],
                ["--start-time", "nan"], ["--start-time", "soon"], ["--start-time", "-1"],
                ["--jpeg-quality", "80"]):  # rgb8: no JPEG to tune
        with pytest.raises(SystemExit) as exit_info:
            to_bag.main(["generated", str(tmp_path / "e"), *bad])
        assert exit_info.value.code == 2


def test_module_cli_runs(tmp_path):
    out = tmp_path / "cli.bag"
    result = subprocess.run([sys.executable, "-m", "seg_accel_ros.tools.to_bag", "generated",
                             str(out), "--count", "3", "--width", "32", "--height", "24"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert bags.list_topics(out)[0].count == 3


def test_camvid_val_segment_is_15_hz(tmp_path):
    val = shared_path("data", "camvid", "val")
    out = tmp_path / "val.bag"
    to_bag.main([str(val), str(out), "--count", "4", "--width", "120", "--height", "90",
                 "--start-time", str(START_S), "--encoding", "jpeg"])
    _, got = read_back(out)
    assert [f.time_ns - START for f in got] == [round(i * 2e9 / 30) for i in range(4)]


def test_driving_clip_keeps_its_25_fps(tmp_path):
    clip = shared_path("data", "video", "highway_short_1280x720_25fps.mp4")
    out = tmp_path / "clip.bag"
    to_bag.main([str(clip), str(out), "--count", "3", "--width", "160", "--height", "90",
                 "--start-time", str(START_S)])
    _, got = read_back(out)
    assert [f.time_ns - START for f in got] == [0, 40_000_000, 80_000_000]
    assert got[0].rgb.shape == (90, 160, 3)
