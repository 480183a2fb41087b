"""The node's process entry: allocator settings are made before any thread exists."""

from __future__ import annotations

from imports import heavy_modules_loaded_by


def test_the_entry_module_imports_neither_torch_nor_rclpy():
    assert heavy_modules_loaded_by("seg_accel_ros.ros.process") == []
