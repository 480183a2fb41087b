"""Process-wide allocator tuning for large frames."""

from __future__ import annotations

import platform

import pytest

from seg_accel_ros.runtime import keep_large_buffers_in_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_glibc_accepts_the_thresholds():
    assert keep_large_buffers_in_heap() is True


def _run(code: str, **env: str) -> str:
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"} | env
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, check=True, timeout=120).stdout.strip()


def test_importing_the_package_asks_pytorch_for_huge_pages_before_torch_loads():
    out = _run("import seg_accel_ros, os, sys; "
               "print(os.environ['THP_MEM_ALLOC_ENABLE'], 'torch' in sys.modules)")
    assert out == "1 False"


def test_a_users_choice_is_kept():
    out = _run("import seg_accel_ros, os; print(os.environ['THP_MEM_ALLOC_ENABLE'])",
               THP_MEM_ALLOC_ENABLE="0")
    assert out == "0"


def test_too_late_once_torch_is_loaded():
    out = _run("import torch; from seg_accel_ros.runtime import prefer_huge_pages; "
               "print(prefer_huge_pages())")
    assert out == "False"
