"""Node benchmark: the node under a 30 Hz camera through real DDS, as users run it.

Starts seg_accel_node and a camera publisher in their own processes, subscribes to every
output (so nothing is skipped by lazy publishing) and reads the node's own diagnostics:
the per-frame overhead (decode, conversion and publishing of all outputs; everything but the
network), the mailbox wait (a frame never waits behind an older one) and the frame accounting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seg_accel_ros.ros.dds_env import localhost_dds_env

SHARED_VIDEO = (Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
                / "highway_1280x720_25fps.mp4")


def run_node_bench(duration: float = 30.0, rate: float = 30.0, width: int = 1280,
                   height: int = 720, model: str = "swiftnet_lite0", source: str = "",
                   encoding: str = "rgb8", domain_id: int | None = None) -> dict:
    """Run the node for ``duration`` seconds of ``rate`` Hz input; return the figures."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    if not source:
        source = str(SHARED_VIDEO) if SHARED_VIDEO.is_file() else "generated"
    domain = domain_id if domain_id is not None else 150 + os.getpid() % 70
    env = localhost_dds_env(domain)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "FASTDDS_DEFAULT_PROFILES_FILE")})
    logs = Path(tempfile.mkdtemp(prefix="seg_accel_bench_"))
    node_log, pub_log = open(logs / "node.log", "w"), open(logs / "publisher.log", "w")  # noqa: SIM115
    node = subprocess.Popen(
        [sys.executable, "-m", "seg_accel_ros.ros.node", "--ros-args", "-p", "autostart:=true",
         "-p", f"model:={model}", "-p", f"warmup_size:=[{height}, {width}]"],
        env=env, stdout=node_log, stderr=subprocess.STDOUT)
    rclpy.init()
    probe = rclpy.create_node("seg_accel_bench")
    counts = {"labels": 0, "labels_color": 0, "path_map": 0}
    diagnostics: list[dict[str, str]] = []

    def on_output(name):
        def callback(_msg):
            counts[name] += 1
        return callback

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("seg_accel_node"):
                diagnostics.append({kv.key: kv.value for kv in status.values}
                                   | {"_level": str(int.from_bytes(status.level, "little")
                                                    if isinstance(status.level, bytes)
                                                    else status.level)})

    subs = [probe.create_subscription(Image, f"/seg_accel_node/{name}", on_output(name), 5)
            for name in counts]
    subs.append(probe.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10))
    publisher = None
    try:
        deadline = time.monotonic() + 180
        while not diagnostics and time.monotonic() < deadline:  # configured and active
            rclpy.spin_once(probe, timeout_sec=0.2)
            if node.poll() is not None:
                raise RuntimeError(f"node exited; see {logs / 'node.log'}")
        frames = int(duration * rate)
        publisher = subprocess.Popen(
            [sys.executable, "-m", "seg_accel_ros.ros.video_publisher", "--source", source,
             "--loop", "--rate", str(rate), "--count", str(frames), "--width", str(width),
             "--height", str(height), "--encoding", encoding],
            env=env, stdout=pub_log, stderr=subprocess.STDOUT)
        end = time.monotonic() + duration + 30
        while publisher.poll() is None and time.monotonic() < end:
            rclpy.spin_once(probe, timeout_sec=0.1)
        settle = time.monotonic() + 3.0  # let the last frame and a diagnostics period through
        while time.monotonic() < settle:
            rclpy.spin_once(probe, timeout_sec=0.1)
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
        node.terminate()
        node.wait(30)
        probe.destroy_node()
        rclpy.try_shutdown()
        node_log.close()
        pub_log.close()
    published = len((logs / "publisher.log").read_text().split())
    last = diagnostics[-1] if diagnostics else {}

    def num(key: str) -> float:
        try:
            return float(last.get(key, "nan"))
        except ValueError:
            return float("nan")

    accounted = num("frames_processed") + num("frames_dropped") + num("frames_rejected") + \
        num("frames_failed")
    return {
        "suite": "node", "input": f"{width}x{height} {encoding} at {rate:g} Hz", "source": source,
        "model": model, "duration_s": duration, "frames_published": published,
        "frames_received": num("frames_received"), "frames_processed": num("frames_processed"),
        "frames_dropped": num("frames_dropped"), "frames_rejected": num("frames_rejected"),
        "frames_failed": num("frames_failed"),
        "frames_unaccounted": num("frames_received") - accounted,
        "overhead_p50_ms": num("overhead_p50_ms"), "overhead_p95_ms": num("overhead_p95_ms"),
        "inference_p50_ms": num("inference_p50_ms"), "latency_p50_ms": num("latency_p50_ms"),
        "latency_p95_ms": num("latency_p95_ms"), "mailbox_wait_p95_ms": num("wait_p95_ms"),
        "mailbox_wait_max_ms": num("wait_max_ms"),
        "outputs_received": dict(counts), "logs": str(logs),
    }
