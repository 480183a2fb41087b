"""The pipelined mode's pieces: the network's own thread and the chain of per-pixel sources."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from seg_accel_ros.engine.background import BackgroundNetwork, SourceChain
from seg_accel_ros.engine.blocks.reuse import MotionField, motion_sources
from seg_accel_ros.engine.motion import flow_positions, move_nearest
from seg_accel_ros.engine.result import FrameResult


def test_a_source_chain_moves_values_as_each_frame_in_turn_would():
    rng = np.random.default_rng(0)
    h, w = 24, 30
    base = rng.integers(0, 11, (h, w)).astype(np.uint8)
    steps = [MotionField((rng.integers(-40, 41, (h // 2, w // 2, 2)) / 8).astype(np.float32), 2.0)
             for _ in range(3)]
    chain = SourceChain()
    assert np.array_equal(chain.moved(base), base) and chain.frames == 0
    expected = base
    for motion in steps:
        chain.append(flow_positions(motion, h, w))
        expected = expected.ravel().take(motion_sources(motion, h, w, 1.0, (h, w))).reshape(h, w)
    assert chain.frames == 3
    np.testing.assert_array_equal(chain.moved(base), expected)
    confidence = rng.random((h, w), dtype=np.float32)
    np.testing.assert_array_equal(chain.moved(confidence),
                                  move_nearest(move_nearest(move_nearest(confidence, steps[0]),
                                                            steps[1]), steps[2]))


def _labels_of(image: np.ndarray) -> FrameResult:
    labels = image[..., 0] // 32
    return FrameResult(labels=labels, path_map=np.zeros_like(labels))


def test_the_background_network_hands_over_its_result_once_done():
    gate = threading.Event()

    def compute(image):
        gate.wait()
        return _labels_of(image)

    net = BackgroundNetwork(compute)
    image = np.full((4, 5, 3), 200, np.uint8)
    assert net.take() is None and not net.busy
    net.submit(image)
    assert net.busy and net.take() is None  # still running
    with pytest.raises(RuntimeError, match="busy"):
        net.submit(image)
    gate.set()
    net.wait()
    result = net.take()
    assert (result.labels == 6).all()
    assert not net.busy and net.completed == 1
    net.close()


def test_cancel_waits_for_the_running_frame_and_counts_failures():
    def failing(image):
        raise ValueError("bad frame")

    net = BackgroundNetwork(failing)
    net.submit(np.zeros((2, 2, 3), np.uint8))
    net.cancel()
    assert not net.busy and net.failures == 1 and net.completed == 0
    net.submit(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="bad frame"):
        net.take(block=True)
    assert net.failures == 2
    net.close()
    net.close()  # idempotent
