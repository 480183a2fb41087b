"""Faults inside the node: an exception raised by the network during inference, and the
lifecycle cycled many times while images stream.

The inference fault is real, not mocked and not a test-only model: once the node runs, the
test gives its process an address-space limit (RLIMIT_AS, set from outside with prlimit) 200 MB
above what it uses, and a 4K frame (within max_pixels) then makes the network's own allocation
fail inside its forward pass (the first layer's output alone is 265 MB; PyTorch raises
"DefaultCPUAllocator: can't allocate memory"), as an oversized frame does on a memory-starved
vehicle computer. The 120x160 frames before and after fit easily."""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition
from ros_harness import (
    DiagnosticsRecorder,
    FrameSender,
    LifecycleDriver,
    proc_status,
    start_node,
    start_publisher,
)
from sensor_msgs.msg import Image

FAULT_NODE = "seg_accel_fault"
HEADROOM_KB = 200 * 1024  # what the node may still map; the 4K frame's first layer needs 265 MB
SMALL = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
HUGE = np.full((2160, 3840, 3), 100, np.uint8)  # 8.3 Mpx: within max_pixels, 25 MB message


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


@pytest.fixture
def fault_node(dds_env, tmp_path):
    proc = start_node(dds_env, tmp_path / "node.log",
                      {"autostart": True, "warmup_frames": 0, "qos_reliability": "reliable",
                       "qos_depth": 10}, name=FAULT_NODE)
    yield proc
    proc.stop()


def test_an_exception_inside_inference_is_an_error_and_the_node_recovers(fault_node, probe):
    camera = FrameSender(probe, FAULT_NODE)
    diagnostics = DiagnosticsRecorder(probe, FAULT_NODE)
    try:
        for i in range(3):  # warm: every thread and memory pool exists
            assert camera.send(SMALL, 300 + i) is not None, fault_node.output()
        pid = fault_node.proc.pid
        _, hard = resource.prlimit(pid, resource.RLIMIT_AS)
        resource.prlimit(pid, resource.RLIMIT_AS,
                         ((proc_status(pid)["VmSize"] + HEADROOM_KB) * 1024, hard))

        assert camera.send(HUGE, 303.0, timeout=0.1) is None
        error = diagnostics.wait_for(lambda s: s.level == DiagnosticStatus.ERROR)
        assert error is not None, fault_node.output()
        assert error.message.startswith("inference failed: RuntimeError: "), error.message
        assert "can't allocate memory" in error.message
        assert int(_values(error)["frames_failed"]) == 1
        time.sleep(1.5)  # no frame comes: the error stands until one is segmented again
        assert diagnostics.statuses[-1].level == DiagnosticStatus.ERROR

        labels = camera.send(SMALL, 304.0)  # the next good frame is segmented
        assert labels is not None and (labels.height, labels.width) == (120, 160)
        recovered = diagnostics.wait_for(lambda s: s.level != DiagnosticStatus.ERROR)
        assert recovered is not None
        # OK, or WARN while the rates still count the frame that failed as not kept up with
        assert (recovered.level == DiagnosticStatus.OK or recovered.message.startswith(
            "cannot keep up")), recovered.message
        values = _values(recovered)
        assert (int(values["frames_processed"]), int(values["frames_failed"])) == (4, 1)
    finally:
        diagnostics.close()
        camera.close()
    assert fault_node.alive()
    assert "[ERROR]" in next(line for line in fault_node.output().splitlines()
                             if "inference failed: RuntimeError" in line)


# ---------------------------------------------------------------------- lifecycle cycling

CYCLE_NODE = "seg_accel_cycled"
CYCLES = 100
WARM_CYCLES = 10  # the first cycles fill allocator pools and DDS caches
THREAD_GROWTH = 0  # threads after the last cycle vs after the warm ones
RSS_GROWTH_KB = 30 * 1024  # seen: 1-10 MB; one leaked model per cycle would be 16 MB x 90


def test_lifecycle_cycled_while_images_stream_leaks_no_threads_or_memory(dds_env, probe,
                                                                         tmp_path):
    """configure, activate, deactivate, cleanup 100 times through the lifecycle services while
    a 30 Hz camera publishes: every transition succeeds, and from the 10th to the 100th cycle
    the node process gains no thread and at most 30 MB of resident memory."""
    node = start_node(dds_env, tmp_path / "node.log",
                      {"warmup_frames": 0, "warmup_size": "[16, 16]"}, name=CYCLE_NODE)
    camera = start_publisher(dds_env, tmp_path / "camera.log", "--rate", "30", "--width", "160",
                             "--height", "120", "--delay", "0")
    labels: list = []
    sub = probe.node.create_subscription(Image, f"/{CYCLE_NODE}/labels",
                                         lambda m: labels.append(m.header.stamp), 10)
    lifecycle = LifecycleDriver(probe, CYCLE_NODE)
    samples = {}
    try:
        for cycle in range(1, CYCLES + 1):
            assert lifecycle.change(Transition.TRANSITION_CONFIGURE), node.output()
            assert lifecycle.change(Transition.TRANSITION_ACTIVATE), node.output()
            time.sleep(0.05)  # frames arrive and are segmented while active
            assert lifecycle.change(Transition.TRANSITION_DEACTIVATE), node.output()
            assert lifecycle.change(Transition.TRANSITION_CLEANUP), node.output()
            if cycle in (1, WARM_CYCLES, CYCLES // 2, CYCLES):
                samples[cycle] = proc_status(node.proc.pid)
        assert probe.get_state(CYCLE_NODE) == "unconfigured"
        assert node.alive() and camera.alive()
    finally:
        lifecycle.close()
        probe.node.destroy_subscription(sub)
        camera.stop()
        node.stop()
    warm, last = samples[WARM_CYCLES], samples[CYCLES]
    assert last["Threads"] - warm["Threads"] <= THREAD_GROWTH, samples
    assert last["VmRSS"] - warm["VmRSS"] <= RSS_GROWTH_KB, samples
    assert len(labels) >= CYCLES // 4, "frames were hardly ever segmented while active"
    assert "Traceback" not in node.output()
