"""Shared fixtures: the ../shared folder (skip when absent) and, for the cross-process ROS
tests, a private DDS domain per test module plus a probe node on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEG_ACCEL_SHARED", PROJECT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is absent on this machine)")
    return path


@pytest.fixture
def camvid_root() -> Path:
    return shared_path("data", "camvid")


@pytest.fixture(scope="module")
def dds_env() -> Iterator[dict[str, str]]:
    """A private DDS domain for this module, applied to this process and its children."""
    pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")
    from ros_harness import fresh_domain

    from seg_accel_ros.ros.dds_env import localhost_dds_env

    env = localhost_dds_env(fresh_domain())
    keys = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def probe(dds_env):
    """This test's own rclpy node on the module's private domain (see ros_harness.Probe)."""
    import rclpy
    from ros_harness import Probe

    context = rclpy.Context()
    rclpy.init(context=context)
    p = Probe(context)
    yield p
    p.close()
    rclpy.shutdown(context=context)


def pytest_sessionfinish(session, exitstatus) -> None:
    """Free the Fast DDS segments of test processes that had to be killed (16 MB each)."""
    from seg_accel_ros.ros.dds_shm import remove_stale_segments

    remove_stale_segments()
