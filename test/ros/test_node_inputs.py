"""The node accepts compressed (JPEG/PNG) and non-RGB raw camera encodings."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import diagnostics_of, start_node, start_publisher
from sensor_msgs.msg import Image


@pytest.mark.parametrize("transport, encoding", [
    ("compressed", "jpeg"), ("compressed", "png"), ("raw", "bgr8"), ("raw", "mono8"),
    ("raw", "mono16"),
])
def test_labels_for_each_input_kind(dds_env, probe, tmp_path, transport, encoding):
    name = f"seg_{transport}_{encoding}"
    node = start_node(dds_env, tmp_path / "node.log",
                      {"autostart": True, "input_transport": transport, "warmup_frames": 0},
                      name=name)
    camera = start_publisher(dds_env, tmp_path / "camera.log", "--rate", "4", "--count", "30",
                             "--width", "320", "--height", "240", "--encoding", encoding,
                             "--delay", "2")
    try:
        labels = probe.collect(Image, f"/{name}/labels", 2, timeout=60)
    finally:
        camera.stop()
        node.stop()
    assert len(labels) == 2, node.output()
    ids = np.frombuffer(bytes(labels[0].data), np.uint8).reshape(240, 320)
    assert ids.max() < 11


def test_blocks_mode_publishes_a_mixed_path_map_and_tunes_live(dds_env, probe, tmp_path):
    name = "seg_blocks"
    node = start_node(dds_env, tmp_path / "node.log",
                      {"autostart": True, "mode": "blocks", "full_fraction": 0.25,
                       "warmup_frames": 0}, name=name)
    camera = start_publisher(dds_env, tmp_path / "camera.log", "--rate", "4", "--count", "80",
                             "--width", "512", "--height", "256", "--delay", "2")
    try:
        paths = probe.collect(Image, f"/{name}/path_map", 1, timeout=60)
        assert paths, node.output()
        blocks = np.frombuffer(bytes(paths[0].data), np.uint8).reshape(256, 512)[::128, ::128]
        assert (blocks == 2).sum() == 2 and (blocks == 1).sum() == 6  # 25% of 2x4 blocks FULL
        (result,) = probe.set_parameters(name, {"full_fraction": 1.0})
        assert result.successful, result.reason
        time.sleep(1.0)
        paths = probe.collect(Image, f"/{name}/path_map", 2, timeout=30)
        full = np.frombuffer(bytes(paths[-1].data), np.uint8)
        assert (full == 2).all()
    finally:
        camera.stop()
        node.stop()


def test_a_node_in_a_namespace_takes_its_topics_and_its_diagnostics_name_from_it(
        dds_env, probe, tmp_path):
    """Two cameras, two nodes of the same name: `/front/seg_accel_node` reads `/front/image`,
    publishes `/front/seg_accel_node/labels` and reports as `/front/seg_accel_node`."""
    node = start_node(dds_env, tmp_path / "node.log",
                      {"autostart": True, "warmup_frames": 0}, namespace="/front")
    camera = start_publisher(dds_env, tmp_path / "camera.log", "--rate", "4", "--count", "40",
                             "--width", "160", "--height", "128", "--topic", "/front/image",
                             "--delay", "2")
    try:
        labels = probe.collect(Image, "/front/seg_accel_node/labels", 1, timeout=60)
        assert labels, node.output()
        statuses = [s for m in probe.collect(DiagnosticArray, "/diagnostics", 3, timeout=10)
                    for s in m.status if diagnostics_of(s, "/front/seg_accel_node")]
    finally:
        camera.stop()
        node.stop()
    assert statuses and statuses[-1].name == "/front/seg_accel_node: segmentation"
    assert int({kv.key: kv.value for kv in statuses[-1].values}["frames_processed"]) >= 1

