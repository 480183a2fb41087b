"""The temporal suite: dense, the engine's defaults, the shipped CPU preset and the latency
target on the same frames, printed per network and source (the figures themselves come from
seg_accel_eval's code, tested there)."""

from __future__ import annotations

import time

import cv2

from seg_accel_ros.frame_sources import generated_frames
from seg_accel_ros.tools.temporal_bench import (
    HIGHWAY,
    SHARED_CHECKPOINTS,
    run_temporal_bench,
    summary_rows,
    trained_weights,
)


def _row(speed: float, throughput: float, **extra) -> dict:
    return {"speed_ratio": speed, "throughput_ratio": throughput, "frames": 3,
            "time_ms": {"median": 10.0}, "path_mix": {"full": 0.337, "low": 0.0, "reuse": 0.663},
            **extra}


def test_summary_rows_print_both_ratios_accuracy_and_the_path_mix_per_run():
    dense = {"frames": 101, "accuracy": {"miou": 63.0}, "time_ms": {"median": 75.0}}
    report = {"suite": "temporal", "settings": {}, "swiftnet_lite0": {"camvid_15hz": {
        "dense": dense, "temporal": _row(0.5, 0.6, accuracy={"miou": 62.5}),
        "cpu_preset": _row(12.5, 2.43, accuracy={"miou": 62.05}),
        "curve": {"threshold_8": _row(1.1, 0.9, accuracy={"miou": 61.0})}}}}
    lines = summary_rows(report)
    assert lines[0].startswith("swiftnet_lite0, CamVid 15 Hz segment (101 frames)")
    preset = next(line for line in lines if "cpu_preset" in line)
    assert "x12.50 median" in preset and "x2.43 throughput" in preset
    assert "mIoU 62.05 (-0.95)" in preset and "0.34/0.00/0.66" in preset
    assert any("threshold_8" in line for line in lines)


def test_the_suite_runs_the_cpu_preset_beside_the_defaults_on_the_same_frames(tmp_path):
    clip = tmp_path / HIGHWAY
    clip.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 128))
    for rgb in generated_frames((256, 128), count=4):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    report = run_temporal_bench(["swiftnet_lite0", "espnet"], tmp_path, 128, time.perf_counter,
                                [4.0], 4, {"keyframe_interval": 6})
    highway = report["swiftnet_lite0"]["highway_720p"]
    assert "camvid_15hz" not in report["swiftnet_lite0"]  # no CamVid here: skipped
    preset = highway["cpu_preset"]["config"]
    assert (preset["reuse_granularity"], preset["motion_downscale"],
            preset["reuse_drift_budget"]) == ("frame", 2, 0.045)  # temporal_cpu_720p.yaml
    assert preset["keyframe_interval"] == 6  # --set wins over the preset
    assert highway["temporal"]["config"]["reuse_granularity"] == "block"  # the defaults
    assert all(highway[k]["frames"] == 4 for k in ("dense", "temporal", "cpu_preset"))
    lines = summary_rows(report)
    assert lines[0] == (f"swiftnet_lite0, highway clip (4 frames): dense "
                        f"{highway['dense']['time_ms']['median']:.1f} ms")
    assert any("cpu_preset" in line and "agreement" in line for line in lines)
    assert any(line.startswith("  latency target") for line in lines)
    assert "no trained weights for espnet" in report["espnet"]["skipped"]
    assert lines[-1].startswith("espnet: skipped, no trained weights")


def test_foreign_networks_are_measured_with_their_shared_checkpoint(tmp_path):
    assert trained_weights("swiftnet_lite0", tmp_path) == ""  # packaged
    assert trained_weights("cgnet", tmp_path) is None
    checkpoint = tmp_path / SHARED_CHECKPOINTS["cgnet"]
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    assert trained_weights("cgnet", tmp_path) == str(checkpoint)
