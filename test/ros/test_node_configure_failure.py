"""A node whose model cannot be loaded fails configure cleanly and stays usable."""

from __future__ import annotations

from lifecycle_msgs.msg import Transition
from ros_harness import start_node

NODE = "seg_accel_bad_weights"


def test_missing_weights_fail_configure_with_a_clear_message(dds_env, probe, tmp_path):

    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": "/nonexistent/weights.pt", "warmup_frames": 0}, name=NODE)
    try:
        assert probe.get_state(NODE) == "unconfigured"
        assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(NODE) == "unconfigured"
        assert node.alive()
    finally:
        node.stop()
    assert "weights file not found: /nonexistent/weights.pt" in node.output()


def test_corrupt_weights_fail_configure(dds_env, probe, tmp_path):

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 definitely not a state dict")
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(bad), "warmup_frames": 0}, name=NODE)
    try:
        assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(NODE) == "unconfigured"
    finally:
        node.stop()
    assert "cannot read weights file" in node.output()


def test_an_unavailable_mode_fails_configure_with_the_reason(dds_env, probe, tmp_path):
    node = start_node(dds_env, tmp_path / "node.log",
                      {"mode": "temporal", "warmup_frames": 0}, name=NODE)
    try:
        assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(NODE) == "unconfigured"
    finally:
        node.stop()
    assert "not available yet" in node.output()
