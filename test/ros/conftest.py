"""Fixtures for the cross-process ROS 2 tests: a private DDS domain and a probe node."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")

from ros_harness import Probe, fresh_domain  # noqa: E402

from seg_accel_ros.ros.dds_env import localhost_dds_env  # noqa: E402


@pytest.fixture(scope="module")
def dds_env() -> Iterator[dict[str, str]]:
    """A private DDS domain for this module, applied to this process and its children."""
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
def probe(dds_env) -> Iterator[Probe]:
    context = rclpy.Context()
    rclpy.init(context=context)
    p = Probe(context)
    yield p
    p.close()
    rclpy.shutdown(context=context)
