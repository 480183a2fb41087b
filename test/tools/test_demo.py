"""`seg_accel_demo` on a tiny input folder: the node runs through real ROS 2 topics and the demo
leaves an overlay video, the report and its plots. Without ``--params`` its temporal mode on a
CPU runs the shipped CPU preset for the frame size."""

from __future__ import annotations

import json

import cv2
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")

from seg_accel_ros.evaluation.sources import open_eval_source  # noqa: E402
from seg_accel_ros.frame_sources import generated_frames  # noqa: E402
from seg_accel_ros.ros.params_file import read_params_file  # noqa: E402
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
    assert report["config"]["reuse_granularity"] == "frame"  # the CPU preset for small frames
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


@pytest.mark.parametrize(("size", "preset"), [((640, 480), "temporal_cpu.yaml"),
                                              ((1280, 720), "temporal_cpu_720p.yaml")])
def test_temporal_mode_on_a_cpu_takes_the_shipped_preset_for_the_frame_size(size, preset):
    args = demo.parse_args(["--set", "max_reuse_frames=2"])
    source = open_eval_source("generated", size=size, generated_count=1)
    path = demo.preset_for(demo.engine_config(args, None), args, source)
    assert path is not None and path.name == preset
    config = demo.engine_config(args, str(path))
    expected = read_params_file(path)
    assert config.reuse_granularity == expected["reuse_granularity"] == "frame"
    assert config.motion_downscale == expected["motion_downscale"]
    assert config.max_reuse_frames == 2  # --set still wins over the preset


@pytest.mark.parametrize("argv", [["--params", "none"], ["--mode", "blocks"],
                                  ["--set", "device=cuda"]],
                         ids=["params-none", "blocks-mode", "cuda"])
def test_no_preset_when_asked_for_none_or_outside_temporal_mode_on_a_cpu(argv):
    args = demo.parse_args(argv)
    source = open_eval_source("generated", size=(640, 480), generated_count=1)
    assert demo.preset_for(demo.engine_config(args, None), args, source) is None
