"""Tools that time the engines start like the node: allocator settings before torch loads."""

from __future__ import annotations

import subprocess
import sys

from imports import heavy_modules_loaded_by


def test_the_entry_points_module_loads_no_torch():
    assert heavy_modules_loaded_by("seg_accel_ros.tools.entry_points") == []


def test_seg_accel_eval_entry_runs_the_eval_tool():
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['seg_accel_eval', "
                          "'--help']; from seg_accel_ros.tools.entry_points import "
                          "seg_accel_eval; sys.exit(seg_accel_eval())"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: seg_accel_eval")
