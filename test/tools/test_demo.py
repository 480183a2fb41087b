"""`seg_accel_demo` on a tiny input folder: the node runs through real ROS 2 topics and the demo
leaves an overlay video, the report and its plots."""

from __future__ import annotations

import json

import cv2
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")

from seg_accel_ros.frame_sources import generated_frames  # noqa: E402
from seg_accel_ros.tools import demo  # noqa: E402


def test_demo_on_an_image_folder(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate(generated_frames((160, 128), count=6)):
        cv2.imwrite(str(frames / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "demo"
    code = demo.main(["--input", str(frames), "--frames", "6", "--rate", "3", "--width", "160",
                      "--height", "128", "--out", str(out), "--set", "max_reuse_frames=2"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["evaluation"] == "live"
    assert report["config"]["max_reuse_frames"] == 2
    assert report["live"]["frames_published"] == 6
    assert report["frames_with_output"] >= 1
    assert report["latency_ms"]["p50"] > 0
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    ok, first = cap.read()
    assert ok and first.shape == (128, 3 * 160, 3)
    for name in ("report.html", "report.md", "frames.jsonl", "plots/timing.png",
                 "plots/path_mix.png", "plots/samples.png"):
        assert (out / name).is_file(), name


def test_demo_rejects_a_missing_input(tmp_path):
    with pytest.raises(SystemExit, match="no video file or image folder"):
        demo.main(["--input", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])


def test_demo_rejects_an_unknown_engine_setting(tmp_path):
    with pytest.raises(SystemExit, match="unknown engine setting 'reuse_treshold'"):
        demo.main(["--out", str(tmp_path), "--set", "reuse_treshold=8"])


def test_demo_rejects_a_parameter_file_the_node_would_refuse(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    reuse_granularity: pixel\n")
    with pytest.raises(SystemExit, match="reuse_granularity must be one of"):
        demo.main(["--out", str(tmp_path), "--params", str(params)])
