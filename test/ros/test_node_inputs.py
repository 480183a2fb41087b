"""The node accepts compressed (JPEG/PNG) and non-RGB raw camera encodings."""

from __future__ import annotations

import numpy as np
import pytest
from ros_harness import start_node, start_publisher
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
