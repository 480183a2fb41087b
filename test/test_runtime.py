"""Process-wide allocator tuning for large frames."""

from __future__ import annotations

import platform

import pytest

from seg_accel_ros.runtime import keep_large_buffers_in_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_glibc_accepts_the_thresholds():
    assert keep_large_buffers_in_heap() is True
