"""The node's inference thread survives whatever a frame throws at it.

In-process, with a real rclpy context (no DDS traffic needed): the frame processing is replaced
by one that raises what decode, inference or publishing could raise (MemoryError, a bug's
TypeError...). Each such frame is counted as failed with its reason (what the diagnostics
report with level ERROR), and the thread goes on taking frames. Before this was guarded, any
exception other than a codec error ended the thread silently and the node never segmented
again."""

from __future__ import annotations

import time

import pytest
import rclpy
from sensor_msgs.msg import Image

from seg_accel_ros.ros.node import SegAccelNode


@pytest.fixture
def node(dds_env):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = SegAccelNode("seg_accel_worker_test", context=context)
    yield node
    node._stop_worker()
    node.destroy_node()
    rclpy.shutdown(context=context)


def _wait(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize("error", [MemoryError("cannot allocate 25 MB"),
                                   TypeError("unsupported operand"), RuntimeError("CUDA error")])
def test_the_worker_counts_any_failure_and_keeps_taking_frames(node, error):
    processed = []

    def process(msg, received):
        if msg.header.frame_id == "bad":
            # a fresh exception: the shared parameter's traceback would hold the worker's frame,
            # hence the node and its DDS participant, until the test process exits
            raise type(error)(*error.args)
        processed.append(msg.header.frame_id)

    node._process = process
    node._start_worker()
    for i, frame_id in enumerate(["bad", "good", "bad", "good"]):
        msg = Image()
        msg.header.frame_id = frame_id
        node._mailbox.put((msg, time.monotonic()))
        assert _wait(lambda i=i: node._stats.failed + len(processed) == i + 1)
    assert node._worker.is_alive()
    assert processed == ["good", "good"] and node._stats.failed == 2
    assert node._stats.last_error == f"{type(error).__name__}: {error}"
    assert node._last_failure == f"processing failed: {type(error).__name__}: {error}"
