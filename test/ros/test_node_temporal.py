"""seg_accel_node in temporal mode, driven as a user would: REUSE shows up in the diagnostics
for an unchanging camera, temporal parameters are tunable live and validated (``low_fusion``
only where the network has a trained fusion), and a stamp jumping back resets the temporal
state."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from ros_harness import FrameSender, diagnostics_of, start_node

from seg_accel_ros.engine.fusion import fusion_path
from seg_accel_ros.engine.temporal_policy import TemporalConfig

NODE = "seg_accel_node"


@pytest.fixture(scope="module")
def node(dds_env, tmp_path_factory):
    proc = start_node(dds_env, tmp_path_factory.mktemp("node") / "node.log",
                      {"mode": "temporal", "reuse_threshold": 1.0, "autostart": True,
                       "warmup_frames": 1, "warmup_size": "[128, 256]",
                       "diagnostics_period": 0.2})
    yield proc
    code = proc.stop()
    assert code in (0, -2), proc.output()


def _values(probe) -> dict[str, str]:
    diags = probe.collect(DiagnosticArray, "/diagnostics", 2, timeout=10)
    status = next(s for d in diags[-1:] for s in d.status if diagnostics_of(s, NODE))
    return {kv.key: kv.value for kv in status.values}


def _until_answered(sender: FrameSender, img: np.ndarray, stamp: float) -> float:
    """Send ``img`` until the node answers (the first best-effort samples may go out before
    discovery completes in the node's direction); return the next stamp."""
    for attempt in range(5):
        if sender.send(img, stamp + 0.1 * attempt, timeout=10) is not None:
            return stamp + 0.1 * (attempt + 1)
    raise AssertionError("the node never answered")


def _blocky_image(seed: int) -> np.ndarray:
    """128 x 256 of random 8-px squares: texture the flow can follow."""
    rng = np.random.default_rng(seed)
    return np.repeat(np.repeat(rng.integers(0, 255, (16, 32, 3), np.uint8), 8, 0), 8, 1)


def test_still_camera_frames_are_reused(node, probe):
    sender = FrameSender(probe, NODE)
    try:
        img = _blocky_image(0)
        start = _until_answered(sender, img, 99.0)
        for i in range(4):
            assert sender.send(img, start + 0.1 * i) is not None, node.output()
        values = _values(probe)
        assert values["mode"] == "temporal"
        assert float(values["path_reuse"]) > 0.0
        assert int(values["frames_processed"]) >= 4
        assert float(values["feature_cache_mb"]) > 0.0
    finally:
        sender.close()


def test_configure_warns_that_per_block_reuse_is_slow_on_a_cpu(node, probe):
    deadline = time.monotonic() + 30
    while "configured: model" not in node.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = node.output()
    assert "configured: model" in log, log
    assert "WARN" in log and "usually slower than dense on a CPU" in log, log
    assert "config/temporal_cpu.yaml" in log


def test_frames_of_an_odd_size_get_labels_of_that_size(node, probe):
    """127 x 255 (odd, like KITTI's 375 rows), recomputed after every REUSE frame: frames
    without FULL blocks see half-resolution sizes rounded up, yet every label image has the
    frame's size and the cache serves the frames after them."""
    (ok,) = probe.set_parameters(NODE, {"max_reuse_frames": 1})
    assert ok.successful, ok.reason
    sender = FrameSender(probe, NODE)
    try:
        img = _blocky_image(1)
        img = np.ascontiguousarray(img[:127, :255])
        start = _until_answered(sender, img, 150.0)
        for i in range(6):
            labels = sender.send(img, start + 0.1 * i)
            assert labels is not None, node.output()
            assert (labels.height, labels.width) == (127, 255)
        values = _values(probe)
        assert int(values["cache_misses"]) == 0
        assert float(values["path_reuse"]) > 0.0
    finally:
        sender.close()
        probe.set_parameters(NODE, {"max_reuse_frames": TemporalConfig.max_reuse_frames})


def test_temporal_parameters_are_tunable_and_validated(node, probe):
    (ok,) = probe.set_parameters(NODE, {"reuse_threshold": 3.0})
    assert ok.successful, ok.reason
    for name, bad in (("reuse_threshold", -1.0), ("keyframe_interval", 0),
                      ("max_reuse_frames", -2), ("target_latency_ms", float("nan"))):
        (res,) = probe.set_parameters(NODE, {name: bad})
        assert not res.successful and res.reason
    assert probe.get_parameters(NODE, ["reuse_threshold"]) == [3.0]


def test_reuse_granularity_is_switchable_live_and_validated(node, probe):
    (bad,) = probe.set_parameters(NODE, {"reuse_granularity": "pixel"})
    assert not bad.successful and "reuse_granularity" in bad.reason
    for name, value in (("reuse_granularity", "frame"), ("reuse_threshold", 1.0)):
        (ok,) = probe.set_parameters(NODE, {name: value})
        assert ok.successful, ok.reason
    sender = FrameSender(probe, NODE)
    try:
        img = np.full((128, 256, 3), 60, np.uint8)
        img[:, 128:] = 200
        start = _until_answered(sender, img, 300.0)
        labels = [sender.send(img, start + 0.1 * i) for i in range(4)]
        assert all(m is not None for m in labels), node.output()
        # a still camera: dense keyframes and whole reused frames give the same labels
        assert len({bytes(m.data) for m in labels}) == 1
        assert float(_values(probe)["path_reuse"]) > 0.0
    finally:
        sender.close()
        (back,) = probe.set_parameters(NODE, {"reuse_granularity": "block"})
        assert back.successful, back.reason
    assert probe.get_parameters(NODE, ["reuse_granularity"]) == ["block"]


def test_pipelined_mode_is_switchable_live_and_reports_label_age(node, probe):
    """``pipelined`` needs frame granularity; on, every frame is answered and the diagnostics
    count the frames the second thread segmented and how old the published labels are."""
    (bad,) = probe.set_parameters(NODE, {"pipelined": True})  # block granularity
    assert not bad.successful and "reuse_granularity" in bad.reason
    for name, value in (("reuse_granularity", "frame"), ("reuse_threshold", 0.0),
                        ("max_reuse_frames", 0), ("pipelined", True)):
        (ok,) = probe.set_parameters(NODE, {name: value})
        assert ok.successful, ok.reason
    (bad,) = probe.set_parameters(NODE, {"reuse_granularity": "block"})
    assert not bad.successful and "pipelined" in bad.reason
    sender = FrameSender(probe, NODE)
    try:
        img = _blocky_image(2)
        start = _until_answered(sender, img, 400.0)
        for i in range(8):
            labels = sender.send(np.roll(img, 4 * i, axis=1), start + 0.1 * i)
            assert labels is not None, node.output()
            time.sleep(0.2)  # room for the second thread to finish a frame
        values = _values(probe)
        assert int(values["network_runs_pipelined"]) >= 1
        assert float(values["label_age_max_frames"]) >= 1
        assert float(values["path_reuse"]) > 0.0
        sender.send(np.roll(img, 40, axis=1), start + 1.0)  # the second thread starts on it
        # deactivating waits for that frame; activated again, the node labels frames at once
        assert probe.change_state(NODE, Transition.TRANSITION_DEACTIVATE), node.output()
        assert probe.change_state(NODE, Transition.TRANSITION_ACTIVATE), node.output()
        assert sender.send(img, start + 2.0) is not None, node.output()
    finally:
        sender.close()
        for name, value in (("pipelined", False), ("reuse_granularity", "block"),
                            ("reuse_threshold", 1.0),
                            ("max_reuse_frames", TemporalConfig.max_reuse_frames)):
            (back,) = probe.set_parameters(NODE, {name: value})
            assert back.successful, back.reason


def test_stamp_going_back_resets_the_temporal_state(node, probe):
    before = int(_values(probe)["stream_resets"])
    sender = FrameSender(probe, NODE)
    try:
        img = np.full((128, 256, 3), 90, np.uint8)
        _until_answered(sender, img, 200.0)
        assert sender.send(img, 150.0) is not None  # e.g. a looping bag
    finally:
        sender.close()
    assert int(_values(probe)["stream_resets"]) > before


@pytest.fixture(scope="module")
def node_without_fusion(dds_env, tmp_path_factory):
    """A temporal-mode node of a network with no trained LOW-block fusion."""
    proc = start_node(dds_env, tmp_path_factory.mktemp("plain") / "node.log",
                      {"mode": "temporal", "model": "espnet", "autostart": True,
                       "warmup_frames": 0}, name="plain_node")
    yield proc
    code = proc.stop()
    assert code in (0, -2), proc.output()


def test_low_fusion_is_rejected_live_for_a_network_without_it(node_without_fusion, probe):
    deadline = time.monotonic() + 120
    while probe.get_state("plain_node") != "active":
        assert time.monotonic() < deadline, node_without_fusion.output()
        time.sleep(0.2)
    (res,) = probe.set_parameters("plain_node", {"low_fusion": True})
    assert not res.successful
    assert "no trained LOW-block fusion for espnet" in res.reason
    assert probe.get_parameters("plain_node", ["low_fusion"]) == [False]
    for name, value in (("low_fusion", False), ("reuse_threshold", 2.0)):
        (ok,) = probe.set_parameters("plain_node", {name: value})
        assert ok.successful, ok.reason


def test_a_network_without_trained_weights_is_named_untrained_at_configure(
        node_without_fusion, node, probe):
    deadline = time.monotonic() + 120
    while probe.get_state("plain_node") != "active":
        assert time.monotonic() < deadline, node_without_fusion.output()
        time.sleep(0.2)
    assert "model espnet has no trained weights" in node_without_fusion.output()
    assert "has no trained weights" not in node.output()  # swiftnet_lite0's packaged ones


def test_low_fusion_is_accepted_live_where_it_is_bundled(node, probe):
    if not fusion_path("swiftnet_lite0").is_file():
        pytest.skip("no bundled fusion weights for swiftnet_lite0")
    try:
        (ok,) = probe.set_parameters(NODE, {"low_fusion": True})
        assert ok.successful, ok.reason
    finally:
        probe.set_parameters(NODE, {"low_fusion": False})
