"""Stale Fast DDS segments: removed when nobody holds their lock, never while a process lives."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seg_accel_ros.ros.dds_shm import SHM_DIR, remove_stale_segments

SEGMENT = "fastdds_0123456789abcdef"


def _segment(folder: Path, name: str = SEGMENT, age_s: float = 60.0) -> tuple[Path, Path]:
    segment, lock = folder / name, folder / f"{name}_el"
    segment.write_bytes(b"\1" * 8192)  # not zeros: a compressing file system keeps no blocks
    lock.touch()
    old = time.time() - age_s
    for path in (segment, lock):
        os.utime(path, (old, old))
    return segment, lock


def test_a_segment_whose_lock_nobody_holds_is_removed_with_its_lock_file(tmp_path):
    segment, lock = _segment(tmp_path)
    stale = remove_stale_segments(tmp_path)
    assert [s.path for s in stale] == [segment]
    assert stale[0].bytes >= 8192
    assert not segment.exists() and not lock.exists()


def test_a_segment_whose_lock_is_held_is_kept(tmp_path):
    segment, lock = _segment(tmp_path)
    fd = os.open(lock, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert remove_stale_segments(tmp_path) == []
    finally:
        os.close(fd)
    assert segment.exists() and lock.exists()


def test_young_segments_ports_and_other_files_are_left_alone(tmp_path):
    young, _ = _segment(tmp_path, age_s=0.0)
    port, _ = _segment(tmp_path, "fastdds_port7411")
    no_lock = tmp_path / "fastdds_fedcba9876543210"
    no_lock.write_bytes(b"x")
    other = tmp_path / "sem.fastdds_port7411_mutex"
    other.write_bytes(b"x")
    assert remove_stale_segments(tmp_path, min_age_s=5.0) == []
    assert all(p.exists() for p in (young, port, no_lock, other))


def test_a_dry_run_lists_without_removing(tmp_path):
    segment, lock = _segment(tmp_path)
    assert [s.path for s in remove_stale_segments(tmp_path, dry_run=True)] == [segment]
    assert segment.exists() and lock.exists()


def test_a_missing_folder_has_nothing_stale(tmp_path):
    assert remove_stale_segments(tmp_path / "absent") == []


_PARTICIPANT = """
import sys, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("segment_owner")
node.create_publisher(String, "chatter", 10)
print("ready", flush=True)
sys.stdin.read()  # until the test closes it; SIGINT may be ignored under a CI runner
node.destroy_node()
rclpy.shutdown()
"""


def _own_segments(before: set[str]) -> set[str]:
    return {p.name for p in SHM_DIR.glob("fastdds_*") if p.name not in before
            and not p.name.startswith("fastdds_port") and not p.name.endswith("_el")}


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason=f"needs {SHM_DIR} (Linux shared memory)")
def test_a_killed_participants_segments_are_removed_and_a_live_ones_kept(dds_env):
    """Real Fast DDS with the package's profile: SIGKILL leaves segments that only this frees."""

    def participant() -> tuple[subprocess.Popen, set[str]]:
        before = {p.name for p in SHM_DIR.iterdir()}
        proc = subprocess.Popen([sys.executable, "-c", _PARTICIPANT], env=dds_env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc, _own_segments(before)

    killed, killed_segments = participant()
    live, live_segments = participant()
    try:
        assert killed_segments and live_segments
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert all((SHM_DIR / name).exists() for name in killed_segments)  # the leak
        time.sleep(1.1)
        removed = {s.path.name for s in remove_stale_segments(min_age_s=1.0)}
        assert killed_segments <= removed
        assert not any((SHM_DIR / name).exists() for name in killed_segments)
        assert not removed & live_segments
        assert all((SHM_DIR / name).exists() for name in live_segments)
    finally:
        for proc in (killed, live):
            proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
