"""The package builds with colcon into the layout `ros2 run` and `ros2 launch` expect."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
EXECUTABLES = ("seg_accel_node", "seg_accel_eval", "seg_accel_replay", "seg_accel_bench",
               "seg_accel_to_bag", "seg_accel_headroom", "seg_accel_tune",
               "seg_accel_train_fusion", "seg_accel_train", "seg_accel_demo",
               "seg_accel_train_policy", "seg_accel_dds_clean")


def test_package_xml_is_format_3_with_runtime_dependencies():
    root = ET.parse(PROJECT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "seg_accel_ros"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "lifecycle_msgs", "launch_ros",
            "python3-numpy", "python3-opencv"} <= deps
    assert root.find("export/build_type").text == "ament_python"


def test_colcon_build_installs_executables_launch_and_config(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    if colcon is None:
        pytest.skip("colcon is not installed (make setup installs it)")
    src = tmp_path / "src" / "seg_accel_ros"
    shutil.copytree(PROJECT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "install", "log", "__pycache__", "*.egg-info", "out"))
    result = subprocess.run([colcon, "build", "--packages-select", "seg_accel_ros"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "seg_accel_ros"
    for name in EXECUTABLES:
        exe = prefix / "lib" / "seg_accel_ros" / name
        assert exe.is_file() and exe.stat().st_mode & 0o111, name
    share = prefix / "share" / "seg_accel_ros"
    for rel in ("package.xml", "launch/seg_accel.launch.py", "config/seg_accel.yaml",
                "config/temporal_cpu.yaml", "config/temporal_cpu_720p.yaml",
                "config/fastdds_localhost.xml"):
        assert (share / rel).is_file(), rel
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages"
            / "seg_accel_ros").is_file()
    # the installed package finds its shipped presets in its share directory
    site = next(prefix.glob("lib/python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site), "AMENT_PREFIX_PATH": str(prefix)}
    found = subprocess.run(
        [sys.executable, "-c", "import seg_accel_ros.ros.params_file as m; "
         "print(m.__file__); print(m.shipped_params_file('temporal_cpu.yaml'))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    module, preset = found.stdout.split()
    assert Path(module).is_relative_to(site)
    assert Path(preset) == share / "config" / "temporal_cpu.yaml"
