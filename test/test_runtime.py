"""Process-wide settings: allocator tuning, garbage-collector freezing, publication mode."""

from __future__ import annotations

import gc
import platform
import resource

import numpy as np
import pytest

from seg_accel_ros.runtime import (
    freeze_long_lived_objects,
    keep_large_buffers_in_heap,
    prefer_asynchronous_publication,
    thaw_objects,
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_glibc_accepts_the_thresholds():
    assert keep_large_buffers_in_heap() is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_a_freed_frame_sized_buffer_is_reused_without_page_faults():
    keep_large_buffers_in_heap()
    size = 48 * 1024 * 1024  # above glibc's largest mmap threshold, like 720p logits
    np.ones(size, np.uint8)  # the heap grows once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        np.ones(size, np.uint8)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 100  # memory given back to the OS faults in again (thousands of times)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_frozen_objects_leave_the_collector_until_thawed():
    alive = _Cycle()
    try:
        assert freeze_long_lived_objects() > 0
        assert not any(obj is alive for obj in gc.get_objects())
    finally:
        thaw_objects()
    assert gc.get_freeze_count() == 0
    assert any(obj is alive for obj in gc.get_objects())


def test_publication_mode_defaults_to_asynchronous_unless_set():
    env: dict[str, str] = {}
    assert prefer_asynchronous_publication(env) == "ASYNCHRONOUS"
    assert env == {"RMW_FASTRTPS_PUBLICATION_MODE": "ASYNCHRONOUS"}
    chosen = {"RMW_FASTRTPS_PUBLICATION_MODE": "SYNCHRONOUS"}
    assert prefer_asynchronous_publication(chosen) == "SYNCHRONOUS"
