"""Environment for DDS confined to this machine (tests, demo, benchmarks); no rclpy import."""

from __future__ import annotations

import os
from pathlib import Path

PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_localhost.xml"


def installed_profile() -> Path:
    """The Fast DDS profile shipped with the package (source tree or ament share folder)."""
    if PROFILE.is_file():
        return PROFILE
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("seg_accel_ros")) / "config" / PROFILE.name
    except Exception:  # no ament index (plain pip install): the source tree is all there is
        return PROFILE


def localhost_dds_env(domain_id: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default os.environ) that keeps DDS traffic on this machine.

    Own domain id per process group, localhost discovery (ROS_LOCALHOST_ONLY is ignored since
    Kilted) and a profile with a large shared-memory segment: with default transports
    best-effort 720p images are mostly lost.
    """
    if not 0 <= domain_id <= 232:
        raise ValueError("ROS_DOMAIN_ID must be in 0..232")
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(installed_profile())
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env
