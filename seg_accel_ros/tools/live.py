"""A live pipeline for tools: seg_accel_node and a camera (publisher or bag replay) in child
processes.

Both run on a private DDS domain confined to this machine; the calling tool joins the same
domain with its own rclpy node to watch the outputs, exactly as a user's stack would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seg_accel_ros.ros.dds_env import localhost_dds_env
from seg_accel_ros.ros.dds_shm import remove_stale_segments

_DDS_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")


class LivePipeline:
    """Start the node (autostart) and, on demand, a camera; stop both on exit."""

    def __init__(self, node_params: dict[str, object], domain_id: int | None = None,
                 log_dir: str | Path | None = None) -> None:
        domain = domain_id if domain_id is not None else 150 + os.getpid() % 70
        self.env = localhost_dds_env(domain)
        os.environ.update({k: self.env[k] for k in _DDS_KEYS})  # this process joins too
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="seg_accel_"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.node_params = {"autostart": True, **node_params}
        self.node: subprocess.Popen | None = None
        self.camera: subprocess.Popen | None = None
        self._logs: list = []

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log = open(self.log_dir / log_name, "w")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        return subprocess.Popen([sys.executable, "-m", *args], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT)

    def start_node(self) -> None:
        args = ["seg_accel_ros.ros.process", "--ros-args"]
        for key, value in self.node_params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", f"{key}:={text}"]
        self.node = self._spawn(args, "node.log")

    def wait_until_active(self, probe, node_name: str = "seg_accel_node",
                          timeout: float = 300.0) -> None:
        """Poll the node's standard get_state service until it reports 'active'."""
        import rclpy
        from lifecycle_msgs.srv import GetState

        client = probe.create_client(GetState, f"/{node_name}/get_state")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.node is not None and self.node.poll() is not None:
                    raise RuntimeError(f"the node exited; see {self.log_dir / 'node.log'}")
                if client.wait_for_service(timeout_sec=0.5):
                    future = client.call_async(GetState.Request())
                    rclpy.spin_until_future_complete(probe, future, timeout_sec=5.0)
                    if future.done() and future.result().current_state.label == "active":
                        return
                time.sleep(0.5)
        finally:
            probe.destroy_client(client)
        raise TimeoutError(f"the node did not become active; see {self.log_dir / 'node.log'}")

    def start_camera(self, source: str, rate: float, count: int, width: int = 0,
                     height: int = 0, encoding: str = "rgb8", loop: bool = False,
                     reliable: bool = False, subscribers: int = 1) -> None:
        """Publish ``source`` once ``subscribers`` (the node, and any watchers) have matched."""
        args = ["seg_accel_ros.ros.video_publisher", "--source", source, "--rate", str(rate),
                "--count", str(count), "--width", str(width), "--height", str(height),
                "--encoding", encoding, "--wait-for-subscribers", "60",
                "--min-subscribers", str(subscribers)]
        args += ["--loop"] * loop + ["--reliable"] * reliable
        self.camera = self._spawn(args, "camera.log")

    def start_replay(self, bag: str | Path, topic: str, remap_to: str, rate: float = 1.0,
                     subscribers: int = 1) -> None:
        """Play ``topic`` of a bag on ``remap_to`` at its recorded timing (seg_accel_replay),
        once ``subscribers`` (the node, and any watchers) have matched; it is the camera."""
        args = ["seg_accel_ros.tools.replay", str(bag), "--topics", topic, "--remap",
                f"{topic}:={remap_to}", "--rate", str(rate), "--wait-for-subscribers", "60",
                "--min-subscribers", str(subscribers), "--delay", "0.5"]
        self.camera = self._spawn(args, "replay.log")

    def camera_running(self) -> bool:
        return self.camera is not None and self.camera.poll() is None

    def published_stamps(self) -> list[str]:
        path = self.log_dir / "camera.log"
        return [s for s in path.read_text().split() if s[:1].isdigit()] if path.is_file() else []

    def stop(self) -> None:
        for proc in (self.camera, self.node):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    remove_stale_segments()  # a killed participant leaves its segments behind
        for log in self._logs:
            log.close()

    def __enter__(self) -> LivePipeline:
        self.start_node()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
