"""The temporal suite's printed trade-off curve: both speed ratios, mIoU and path mix per
threshold (the figures themselves come from seg_accel_eval's code, tested there)."""

from __future__ import annotations

from seg_accel_ros.tools.temporal_bench import curve_rows


def test_curve_rows_print_median_and_throughput_ratios():
    row = {"speed_ratio": 12.5, "throughput_ratio": 2.43, "accuracy": {"miou": 62.05},
           "path_mix": {"full": 0.337, "low": 0.0, "reuse": 0.663}}
    report = {"suite": "temporal", "swiftnet_lite0": {"camvid_15hz": {"curve": {
        "threshold_8": row}}}}
    lines = curve_rows(report)
    assert lines[0].startswith("swiftnet_lite0:")
    assert "x12.50" in lines[1] and "x2.43" in lines[1] and "62.05" in lines[1]
    assert "0.34/0.00/0.66" in lines[1]
