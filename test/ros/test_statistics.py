"""Rolling statistics behind the node's diagnostics."""

from __future__ import annotations

import math

from seg_accel_ros.ros.statistics import (
    NodeStatistics,
    RateMeter,
    ReasonThrottle,
    RollingWindow,
    SequenceGaps,
)


def test_rate_over_window_and_staleness():
    meter = RateMeter(100)
    for i in range(31):
        meter.tick(i / 30)
    assert abs(meter.rate(1.0) - 30.0) < 1e-6
    assert meter.rate(100.0) == 0.0


def test_percentiles_of_a_window():
    window = RollingWindow(100)
    assert math.isnan(window.percentile(50))
    for v in range(1, 101):
        window.add(float(v))
    assert abs(window.percentile(50) - 50.5) < 1e-9
    assert window.percentile(95) > 94


def test_snapshot_counts_every_frame():
    stats = NodeStatistics(window=10)
    stats.on_received(0.0, replaced_pending=False)
    stats.on_received(0.1, replaced_pending=True)
    stats.on_rejected("unsupported encoding: 'foo'")
    stats.on_failed("RuntimeError: boom")
    stats.on_processed(0.2, 12.0, 8.0, 1.0, {"full": 0.25, "low": 0.75, "reuse": 0.0}, 0.5)
    snap = stats.snapshot(0.3)
    assert (snap["overhead_p95_ms"], snap["overhead_cpu_p95_ms"]) == (1.0, 0.5)
    assert snap["frames_received"] == 2
    assert snap["frames_dropped"] == 1
    assert snap["frames_rejected"] == 1
    assert snap["frames_failed"] == 1
    assert snap["frames_processed"] == 1
    assert snap["path_low"] == 0.75
    assert snap["last_error"] == "RuntimeError: boom"
    assert stats.last_rejected == "unsupported encoding: 'foo'"


def test_rejected_and_failed_frames_count_as_handled_not_as_output():
    stats = NodeStatistics(window=100)
    for i in range(30):
        now = i / 30
        stats.on_received(now, replaced_pending=False)
        if i % 3 == 0:
            stats.on_processed(now, 5.0, 4.0, 1.0, {"full": 1.0})
        elif i % 3 == 1:
            stats.on_rejected("unsupported image encoding 'hsv8'", now)
        else:
            stats.on_failed("RuntimeError: boom", now)
    snap = stats.snapshot(1.0)
    assert abs(snap["input_rate_hz"] - 30.0) < 1e-6
    assert abs(snap["handled_rate_hz"] - 30.0) < 1e-6
    assert abs(snap["output_rate_hz"] - 10.0) < 0.5


def test_input_idle_time_counts_from_the_last_frame_or_the_subscription():
    stats = NodeStatistics(window=10)
    stats.on_received(1.0, replaced_pending=False)
    assert math.isnan(stats.snapshot(2.0)["input_idle_s"])  # not subscribed
    stats.on_listening(10.0)
    assert stats.snapshot(12.5)["input_idle_s"] == 2.5  # nothing since subscribing
    stats.on_received(13.0, replaced_pending=False)
    assert stats.snapshot(13.25)["input_idle_s"] == 0.25
    stats.reset_rolling()  # a new statistics window keeps the input's timing
    assert stats.snapshot(14.0)["input_idle_s"] == 1.0
    stats.on_listening(None)
    assert math.isnan(stats.snapshot(15.0)["input_idle_s"])


def test_a_frame_without_a_clock_counts_but_has_no_latency():
    stats = NodeStatistics(window=10)
    stats.on_processed(0.1, float("nan"), 8.0, 1.0, {"full": 1.0})  # simulated time, no /clock
    assert math.isnan(stats.snapshot(0.2)["latency_p50_ms"])
    stats.on_processed(0.2, 200.0, 8.0, 1.0, {"full": 1.0})
    snap = stats.snapshot(0.3)
    assert (snap["frames_processed"], snap["latency_p50_ms"]) == (2, 200.0)


def test_label_age_is_reported_only_where_the_engine_tracks_it():
    stats = NodeStatistics(window=10)
    stats.on_processed(0.1, 20.0, 8.0, 1.0, {"full": 1.0})  # per-block modes: no age
    assert "label_age_p50_frames" not in stats.snapshot(0.2)
    for age in (0, 1, 2, 3, 1):
        stats.on_processed(0.2, 20.0, 8.0, 1.0, {"reuse": 1.0}, label_age=age)
    snap = stats.snapshot(0.3)
    assert (snap["label_age_p50_frames"], snap["label_age_max_frames"]) == (1.0, 3.0)


def test_sequence_gaps_count_frames_that_never_arrived():
    gaps = SequenceGaps()
    assert gaps.observe(b"cam", 1) == 0
    assert gaps.observe(b"cam", 2) == 0
    assert gaps.observe(b"cam", 6) == 3
    assert gaps.observe(b"other", 40) == 0
    assert gaps.observe(b"cam", 1) == 0  # publisher restarted
    assert gaps.observe(b"cam", None) == 0


def test_each_kind_of_problem_is_logged_then_throttled():
    throttle = ReasonThrottle(period=5.0)
    assert throttle.should_log("unsupported image encoding 'hsv8'", 0.0)
    assert throttle.should_log("step 100 is smaller than the row size", 0.1)
    assert not throttle.should_log("unsupported image encoding 'abc'", 1.0)
    assert throttle.should_log("unsupported image encoding 'abc'", 6.0)

