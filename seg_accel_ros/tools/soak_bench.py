"""Soak benchmark: the node under a 30 Hz 1280x720 camera through real DDS for many minutes.

    seg_accel_bench --suite soak --duration 600 --json out/bench_soak.json

The node benchmark's run (``node_bench``: node and camera in their own processes, every output
subscribed) with a watch on what must not drift over time. Goals:

- resident memory of the node process after warm-up grows by at most 50 MB (sampled once a
  second from /proc/PID/status, with the thread count; the peak of the last 15 s against the
  peak of the first 15 s after warm-up, since RSS swings within every inference);
- latency p95 (input stamp to the node publishing the labels, from the DDS source timestamp of
  each ``~/labels`` message) of the last minute within 10% of the first minute;
- every frame accounted for: received == processed + dropped + rejected + failed (the node's
  own counters at the end);
- no frame older than the newest waiting is ever processed: outputs come in stamp order, and
  after each output the next one is never older than the newest frame published at least
  ``STALE_SLACK_S`` before the previous output left the node (by then that frame was in the
  node's mailbox, and the worker takes the newest frame).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from seg_accel_ros.tools.live import LivePipeline
from seg_accel_ros.tools.node_bench import BenchObserver, percentile, run_node_bench

RSS_GOAL_MB = 50.0
LATENCY_GOAL = 0.10  # last-minute p95 within 10% of the first minute's
WINDOW_S = 60.0  # latency windows and warm-up: one minute (half the run when shorter)
STALE_SLACK_S = 0.1  # delivery time allowed for a frame to reach the node's mailbox
SAMPLE_PERIOD_S = 1.0
PEAK_S = 15.0  # RSS is compared as the peak over this long right after warm-up and at the end


def read_proc_status(pid: int) -> tuple[float, int]:
    """(VmRSS in MB, threads) of a running process."""
    rss_kb = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024.0, threads


class SoakObserver(BenchObserver):
    """Samples the node's memory and threads, and records every output's timing."""

    def __init__(self, sample_period: float = SAMPLE_PERIOD_S) -> None:
        self.sample_period = sample_period
        self.pid: int | None = None
        self.samples: list[tuple[int, float, int]] = []  # (time ns, RSS MB, threads)
        self.outputs: list[tuple[int, int]] = []  # (input stamp ns, node publish time ns)
        self._next_sample = 0.0

    def started(self, pipeline: LivePipeline) -> None:
        self.pid = pipeline.node.pid if pipeline.node is not None else None
        self.tick()

    def labels(self, stamp_ns: int, info) -> None:
        self.outputs.append((stamp_ns, int(info["source_timestamp"])))

    def tick(self) -> None:
        now = time.monotonic()
        if self.pid is None or now < self._next_sample:
            return
        self._next_sample = now + self.sample_period
        try:
            rss, threads = read_proc_status(self.pid)
        except (OSError, ValueError):  # the node has exited
            return
        self.samples.append((time.time_ns(), rss, threads))

    def finish(self, report: dict, pipeline: LivePipeline) -> None:
        published = sorted(_stamp_ns(s) for s in pipeline.published_stamps())
        report.update(analyse(published, self.outputs, self.samples, report))


def _stamp_ns(text: str) -> int:
    sec, _, nanosec = text.partition(".")
    return int(sec) * 1_000_000_000 + int(nanosec or 0)


def stale_outputs(published: list[int], outputs: list[tuple[int, int]],
                  slack_ns: int = int(STALE_SLACK_S * 1e9)) -> tuple[int, int]:
    """(outputs older than the previous output, outputs older than the newest frame that was
    waiting when the node took them); ``published`` sorted input stamps (= publish times),
    ``outputs`` (input stamp, publish time of the labels) in arrival order."""
    out_of_order = stale = 0
    for (stamp, left), (next_stamp, _) in zip(outputs, outputs[1:], strict=False):
        if next_stamp <= stamp:
            out_of_order += 1
            continue
        i = int(np.searchsorted(published, left - slack_ns, side="right")) - 1
        newest_waiting = published[i] if i >= 0 else -1
        if newest_waiting > stamp and next_stamp < newest_waiting:
            stale += 1
    return out_of_order, stale


def analyse(published: list[int], outputs: list[tuple[int, int]],
            samples: list[tuple[int, float, int]], counts: dict) -> dict:
    """The soak figures from the raw records (pure function: testable without ROS)."""
    start = published[0] if published else (outputs[0][0] if outputs else 0)
    span_s = ((published[-1] - start) / 1e9) if published else 0.0
    window = min(WINDOW_S, max(span_s / 2, 1.0))
    windows = max(1, int(span_s // window))
    latency: list[list[float]] = [[] for _ in range(windows)]
    for stamp, left in outputs:
        k = int((stamp - start) / 1e9 // window)
        if 0 <= k < windows:
            latency[k].append((left - stamp) / 1e6)
    rss_max, threads_max = [], []
    for k in range(windows):
        lo, hi = start + int(k * window * 1e9), start + int((k + 1) * window * 1e9)
        in_window = [(rss, th) for t, rss, th in samples if lo <= t < hi]
        rss_max.append(round(max((r for r, _ in in_window), default=float("nan")), 1))
        threads_max.append(max((t for _, t in in_window), default=0))
    p95 = [round(percentile(values, 95), 1) for values in latency]
    first, last = p95[0], p95[-1]
    change = last / first - 1.0 if first and first == first else float("nan")

    # RSS swings by tens of MB within each inference (activations come and go): compare the
    # peaks of the first PEAK_S after warm-up and of the last PEAK_S, not single samples
    warm_end = start + int(window * 1e9)
    after = [(t, rss, th) for t, rss, th in samples if t >= warm_end]
    peak_ns = int(PEAK_S * 1e9)
    rss_warm = max((r for t, r, _ in after if t < warm_end + peak_ns), default=float("nan"))
    rss_end = max((r for t, r, _ in after if t > after[-1][0] - peak_ns),
                  default=float("nan")) if after else float("nan")
    rss_growth = rss_end - rss_warm
    out_of_order, stale = stale_outputs(published, outputs)

    def num(key: str) -> float:
        value = counts.get(key, float("nan"))
        return float(value) if value is not None else float("nan")

    unaccounted = num("frames_unaccounted")
    return {
        "suite": "soak", "window_s": window, "warmup_s": window,
        "rss_after_warmup_mb": rss_warm, "rss_end_mb": rss_end,
        "rss_max_after_warmup_mb": max((r for _, r, _ in after), default=float("nan")),
        "rss_growth_mb": rss_growth, "rss_goal_mb": RSS_GOAL_MB,
        "rss_ok": bool(rss_growth <= RSS_GOAL_MB),
        "threads_after_warmup": after[0][2] if after else 0,
        "threads_end": samples[-1][2] if samples else 0,
        "latency_p95_first_window_ms": first, "latency_p95_last_window_ms": last,
        "latency_p95_change": change, "latency_goal": LATENCY_GOAL,
        "latency_ok": bool(abs(change) <= LATENCY_GOAL),
        "frames_published_not_received": num("frames_published") - num("frames_received")
        - num("frames_lost"),
        "every_frame_accounted": bool(unaccounted == 0),
        "outputs_out_of_order": out_of_order, "outputs_older_than_newest_waiting": stale,
        "stale_slack_s": STALE_SLACK_S,
        "newest_frame_first_ok": bool(out_of_order == 0 and stale == 0),
        "outputs_timed": len(outputs),
        "outputs_per_window": [len(values) for values in latency],
        "latency_p50_per_window_ms": [round(percentile(values, 50), 1) for values in latency],
        "latency_p95_per_window_ms": p95,
        "rss_max_per_window_mb": rss_max, "threads_max_per_window": threads_max,
    }


def run_soak_bench(duration: float = 600.0, rate: float = 30.0, width: int = 1280,
                   height: int = 720, model: str = "swiftnet_lite0", source: str = "",
                   encoding: str = "rgb8", mode: str = "dense",
                   node_params: dict[str, object] | None = None) -> dict:
    """Run the node for ``duration`` seconds of ``rate`` Hz input; return the soak figures."""
    observer = SoakObserver()
    return run_node_bench(duration, rate, width, height, model, source, encoding, mode,
                          observer=observer, node_params=node_params, suite="soak")
