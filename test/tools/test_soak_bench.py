"""The soak benchmark's verdicts, from synthetic records (the run itself is a benchmark, not a
test: seg_accel_bench --suite soak)."""

from __future__ import annotations

import pytest

from seg_accel_ros.tools.soak_bench import analyse, stale_outputs

MS = 1_000_000
S = 1000 * MS
PERIOD = 33 * MS
START = 1_700_000_000 * S
PUBLISHED = [START + i * PERIOD for i in range(3700)]  # about two minutes at 30 Hz


def _newest_first(latency_ns: int, inference_ns: int) -> list[tuple[int, int]]:
    """What a correct node does: after each output, take the newest frame published."""
    outputs, stamp = [], PUBLISHED[0]
    while True:
        left = stamp + latency_ns
        outputs.append((stamp, left))
        newer = [s for s in PUBLISHED if s <= left - inference_ns // 10 and s > stamp]
        if not newer or newer[-1] + latency_ns > PUBLISHED[-1]:
            return outputs
        stamp = newer[-1]


def test_a_node_that_takes_the_newest_frame_is_never_stale():
    assert stale_outputs(PUBLISHED, _newest_first(600 * MS, 600 * MS)) == (0, 0)


def test_processing_an_older_waiting_frame_is_caught():
    outputs = _newest_first(600 * MS, 600 * MS)
    stamp, left = outputs[5]
    outputs[6] = (stamp + PERIOD, outputs[6][1])  # took the frame right after, not the newest
    assert stale_outputs(PUBLISHED, outputs) == (0, 1)


def test_an_output_older_than_the_previous_one_is_out_of_order():
    outputs = _newest_first(600 * MS, 600 * MS)
    outputs[3], outputs[4] = outputs[4], outputs[3]
    out_of_order, _ = stale_outputs(PUBLISHED, outputs)
    assert out_of_order == 1


def _samples(rss_at):
    return [(START + i * S, rss_at(i), 23) for i in range(0, 123)]


COUNTS = {"frames_published": 3700, "frames_received": 3700, "frames_lost": 0,
          "frames_unaccounted": 0}


def test_a_flat_run_meets_every_goal():
    report = analyse(PUBLISHED, _newest_first(600 * MS, 600 * MS),
                     _samples(lambda i: 700 + 30 * (i % 2)), COUNTS)  # swings, no growth
    assert report["window_s"] == 60.0
    assert len(report["latency_p95_per_window_ms"]) == 2
    assert report["latency_p95_change"] == pytest.approx(0.0)
    assert report["rss_growth_mb"] == pytest.approx(0.0)
    assert report["rss_ok"] and report["latency_ok"] and report["every_frame_accounted"]
    assert report["newest_frame_first_ok"]
    assert report["frames_published_not_received"] == 0


def test_memory_growth_latency_drift_and_lost_frames_fail_their_goals():
    outputs = [(stamp, left + (stamp - START) // 200) for stamp, left in  # 0.5% per second
               _newest_first(600 * MS, 600 * MS)]
    report = analyse(PUBLISHED, outputs, _samples(lambda i: 700 + 2 * i), {  # 2 MB/s
        **COUNTS, "frames_unaccounted": 2})
    # peak of the last 15 s (t = 122 s) against the peak of 15 s after warm-up (t = 74 s)
    assert report["rss_growth_mb"] == pytest.approx(2 * (122 - 74)) and not report["rss_ok"]
    assert report["latency_p95_change"] > 0.1 and not report["latency_ok"]
    assert not report["every_frame_accounted"]
