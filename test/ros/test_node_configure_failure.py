"""A node whose model cannot be loaded fails configure cleanly and stays usable: missing,
corrupt, other-architecture and code-carrying weights files, and an unavailable mode."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from lifecycle_msgs.msg import Transition
from ros_harness import start_node

from seg_accel_ros.models.cgnet import CGNet

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


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_weights_file_that_would_run_code_is_refused_and_never_run(dds_env, probe, tmp_path):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCodeWhenUnpickled(marker)}, evil)
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(evil), "warmup_frames": 0}, name=NODE)
    try:
        assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(NODE) == "unconfigured"
        assert node.alive()
    finally:
        node.stop()
    assert not marker.exists(), "the node executed code from the weights file"
    assert (f"configure failed: cannot read weights file {evil}: it holds a pickled Python "
            f"object (posix.mkdir)") in node.output()


def test_weights_of_another_architecture_fail_configure(dds_env, probe, tmp_path):
    other = tmp_path / "cgnet.pt"
    torch.save(CGNet().state_dict(), other)
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(other), "warmup_frames": 0}, name=NODE)
    try:
        assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(NODE) == "unconfigured"
    finally:
        node.stop()
    assert (f"configure failed: weights {other} do not fit architecture 'swiftnet_lite0': "
            in node.output())
