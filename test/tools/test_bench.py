"""``seg_accel_bench`` measures under the node's allocator settings, made before torch loads."""

from __future__ import annotations

from imports import heavy_modules_loaded_by


def test_the_bench_module_imports_no_torch_before_main_runs():
    assert heavy_modules_loaded_by("seg_accel_ros.tools.bench") == []


def test_the_probe_sees_what_a_module_loads():
    assert "torch" in heavy_modules_loaded_by("seg_accel_ros.engine.dense")
