"""The node's process entry: allocator settings are made before any thread exists."""

from __future__ import annotations

import subprocess
import sys


def test_the_entry_module_imports_neither_torch_nor_rclpy():
    probe = ("import sys, seg_accel_ros.ros.process; "
             "print(sorted(m for m in ('torch', 'rclpy', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
