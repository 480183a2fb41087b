"""Process-wide settings: allocator tuning, oneDNN's kernel cache, garbage-collector freezing,
publication mode."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys

import pytest
import torch

from seg_accel_ros.runtime import (
    freeze_long_lived_objects,
    keep_large_buffers_in_heap,
    keep_onednn_primitives,
    prefer_asynchronous_publication,
    thaw_objects,
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_glibc_accepts_the_thresholds():
    assert keep_large_buffers_in_heap() is True


_FAULTS = """
import resource, sys
import numpy as np
from seg_accel_ros.runtime import keep_large_buffers_in_heap
if sys.argv[1] == "tuned":
    keep_large_buffers_in_heap()
size = 48 * 1024 * 1024  # above glibc's largest mmap threshold, like 720p logits
np.ones(size, np.uint8)  # the heap grows once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    np.ones(size, np.uint8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True,
                         timeout=120, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt tuning is glibc-only")
def test_a_freed_frame_sized_buffer_is_reused_without_page_faults():
    # A fresh process, set up at its start as the node and the tools are: late in a long
    # process (this pytest run) the heap may no longer grow in place and glibc maps instead.
    assert _page_faults("tuned") < 100
    assert _page_faults("default") > 1000  # given back to the OS, faulted in page by page


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


def test_onednn_cache_capacity_defaults_to_16384_unless_set():
    env: dict[str, str] = {}
    assert keep_onednn_primitives(env) == "16384"
    assert env == {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16384"}
    assert keep_onednn_primitives({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"}) == "64"


_SHAPES = """
import sys, torch
from seg_accel_ros.runtime import keep_onednn_primitives
keep_onednn_primitives()
w = torch.randn(8, 1, 3, 3)
with torch.inference_mode():
    for rnd in range(2):
        print("pass", rnd, flush=True)
        for n in range(1, 1200):  # more convolution shapes than oneDNN's default cache holds
            torch.mkldnn_convolution(torch.randn(n, 8, 4, 4), w, None, (1, 1), (1, 1), (1, 1), 8)
"""


def _misses_in_second_pass(capacity: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    env["ONEDNN_VERBOSE"] = "2"
    if capacity is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = capacity
    out = subprocess.run([sys.executable, "-c", _SHAPES], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    return out.split("pass 1")[1].count("cache_miss")


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="PyTorch built without oneDNN")
def test_kernels_of_1200_convolution_shapes_stay_compiled():
    assert _misses_in_second_pass(None) == 0
    assert _misses_in_second_pass("1024") > 100  # oneDNN's default: they are compiled again
