"""Node benchmark: the node under a 30 Hz camera through real DDS, as users run it.

Starts seg_accel_node and a camera publisher in their own processes, subscribes to every
output (so nothing is skipped by lazy publishing) and reads the node's own diagnostics:
the per-frame overhead (decode, conversion and publishing of all outputs; everything but the
network), the mailbox wait (a frame never waits behind an older one) and the frame accounting;
and, on this side, the delivery latency of the labels (input stamp to reception).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from seg_accel_ros.ros.diagnostics import TEMPORAL_VALUES, status_name
from seg_accel_ros.ros.image_cdr import header_stamp_ns
from seg_accel_ros.tools.live import LivePipeline

SHARED_VIDEO = (Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
                / "highway_1280x720_25fps.mp4")


def diagnostic_values(msg, node_name: str = "seg_accel_node") -> dict[str, str] | None:
    """The key/value pairs of the node's status in a DiagnosticArray, or None."""
    for status in msg.status:
        if status.name == status_name(node_name):
            return {kv.key: kv.value for kv in status.values}
    return None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (NaN when there are none)."""
    return float(np.percentile(values, q)) if values else float("nan")


class BenchObserver:
    """Hooks for suites built on this run (the soak benchmark); the defaults do nothing.

    ``started`` is called once the node is active and the camera starts, ``labels`` for every
    ``~/labels`` message (its header stamp, and rclpy's MessageInfo: source and received
    timestamps, ns),
    ``diagnostics`` for every status of the node, ``tick`` about ten times a second, and
    ``finish`` with the report before it is returned (to add figures)."""

    def started(self, pipeline: LivePipeline) -> None:
        pass

    def labels(self, stamp_ns: int, info) -> None:
        pass

    def diagnostics(self, values: dict[str, str]) -> None:
        pass

    def tick(self) -> None:
        pass

    def finish(self, report: dict, pipeline: LivePipeline) -> None:
        pass


def run_node_bench(duration: float = 30.0, rate: float = 30.0, width: int = 1280,
                   height: int = 720, model: str = "swiftnet_lite0", source: str = "",
                   encoding: str = "rgb8", mode: str = "dense",
                   observer: BenchObserver | None = None,
                   node_params: dict[str, object] | None = None, suite: str = "node") -> dict:
    """Run the node for ``duration`` seconds of ``rate`` Hz input; return the figures."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    observer = observer or BenchObserver()
    if not source:
        source = str(SHARED_VIDEO) if SHARED_VIDEO.is_file() else "generated"
    counts = {"labels": 0, "labels_color": 0, "path_map": 0}
    delivery_ms: list[float] = []  # input stamp -> labels received here
    diagnostics: list[dict[str, str]] = []
    pipeline = LivePipeline({"model": model, "mode": mode,
                             "warmup_size": f"[{height}, {width}]", **(node_params or {})})
    rclpy.init()
    probe = rclpy.create_node("seg_accel_bench")

    def on_diag(msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg)
        if values:
            diagnostics.append(values)
            observer.diagnostics(values)

    def on_labels(data: bytes, info) -> None:
        counts["labels"] += 1
        stamp_ns = header_stamp_ns(data)
        delivery_ms.append((int(info["received_timestamp"]) - stamp_ns) * 1e-6)
        observer.labels(stamp_ns, info)

    # The outputs are taken serialized: a counting subscriber should not spend the two cores'
    # time on deserializing 4.5 MB per frame in Python while the node publishes.
    for name in counts:
        if name != "labels":
            probe.create_subscription(
                Image, f"/seg_accel_node/{name}",
                lambda _m, n=name: counts.__setitem__(n, counts[n] + 1), 5, raw=True)
    probe.create_subscription(Image, "/seg_accel_node/labels", on_labels, 5, raw=True)
    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    try:
        with pipeline:
            pipeline.wait_until_active(probe)
            pipeline.start_camera(source, rate, int(duration * rate), width, height, encoding,
                                  loop=True)
            observer.started(pipeline)
            end = time.monotonic() + duration + 30
            while pipeline.camera_running() and time.monotonic() < end:
                rclpy.spin_once(probe, timeout_sec=0.1)
                observer.tick()
            settle = time.monotonic() + 3.0  # the last frame and one diagnostics period
            while time.monotonic() < settle:
                rclpy.spin_once(probe, timeout_sec=0.1)
                observer.tick()
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    last = diagnostics[-1] if diagnostics else {}

    def num(key: str) -> float:
        try:
            return float(last.get(key, "nan"))
        except ValueError:
            return float("nan")

    accounted = sum(num(k) for k in ("frames_processed", "frames_dropped", "frames_rejected",
                                     "frames_failed"))
    report = {
        "suite": suite, "input": f"{width}x{height} {encoding} at {rate:g} Hz",
        "source": source, "model": model, "mode": mode, "duration_s": duration,
        "frames_published": len(pipeline.published_stamps()),
        "frames_received": num("frames_received"), "frames_processed": num("frames_processed"),
        "frames_dropped": num("frames_dropped"), "frames_lost": num("frames_lost"),
        "frames_rejected": num("frames_rejected"),
        "frames_failed": num("frames_failed"),
        "frames_unaccounted": num("frames_received") - accounted,
        "overhead_p50_ms": num("overhead_p50_ms"), "overhead_p95_ms": num("overhead_p95_ms"),
        "overhead_cpu_p50_ms": num("overhead_cpu_p50_ms"),
        "overhead_cpu_p95_ms": num("overhead_cpu_p95_ms"),
        "inference_p50_ms": num("inference_p50_ms"), "inference_p95_ms": num("inference_p95_ms"),
        "path_full": num("path_full"), "path_low": num("path_low"),
        "path_reuse": num("path_reuse"), "latency_p50_ms": num("latency_p50_ms"),
        "latency_p95_ms": num("latency_p95_ms"),
        "delivery_p50_ms": percentile(delivery_ms, 50),
        "delivery_p95_ms": percentile(delivery_ms, 95),
        "mailbox_wait_p95_ms": num("wait_p95_ms"),
        "mailbox_wait_max_ms": num("wait_max_ms"),
        "outputs_received": dict(counts), "logs": str(pipeline.log_dir),
    }
    for key in TEMPORAL_VALUES:
        if key in last:
            report[key] = num(key)
    observer.finish(report, pipeline)
    return report
