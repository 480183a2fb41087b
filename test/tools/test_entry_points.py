"""Tools that time the engines start like the node: allocator settings before torch loads."""

from __future__ import annotations

import subprocess
import sys

import pytest
from imports import heavy_modules_loaded_by


def test_the_entry_points_module_loads_no_torch():
    assert heavy_modules_loaded_by("seg_accel_ros.tools.entry_points") == []


@pytest.mark.parametrize("tool", ["seg_accel_eval", "seg_accel_tune"])
def test_each_entry_runs_its_tool(tool):
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = ['{tool}', '--help']; "
                          f"from seg_accel_ros.tools.entry_points import {tool}; "
                          f"sys.exit({tool}())"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: {tool}")
