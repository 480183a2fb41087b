"""A node whose model cannot be loaded fails configure cleanly and stays usable: missing,
corrupt, other-architecture and code-carrying weights files, and an unavailable mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lifecycle_msgs.msg import Transition
from ros_harness import start_node

from seg_accel_ros.models.cgnet import CGNet


@pytest.fixture
def node_name(request) -> str:
    """A node name of its own per test: the services of a node stopped a moment ago can linger
    in the DDS graph, and a request that goes only to them is never answered."""
    return "seg_bad_" + request.node.name.removeprefix("test_")[:40]


def test_missing_weights_fail_configure_with_a_clear_message(dds_env, probe, tmp_path, node_name):

    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": "/nonexistent/weights.pt", "warmup_frames": 0}, name=node_name)
    try:
        assert probe.get_state(node_name) == "unconfigured"
        assert not probe.change_state(node_name, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(node_name) == "unconfigured"
        assert node.alive()
    finally:
        node.stop()
    assert "weights file not found: /nonexistent/weights.pt" in node.output()


def test_corrupt_weights_fail_configure(dds_env, probe, tmp_path, node_name):

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 definitely not a state dict")
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(bad), "warmup_frames": 0}, name=node_name)
    try:
        assert not probe.change_state(node_name, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(node_name) == "unconfigured"
    finally:
        node.stop()
    assert "cannot read weights file" in node.output()


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_weights_file_that_would_run_code_is_refused_and_never_run(dds_env, probe, tmp_path,
                                                                     node_name):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": _RunsCodeWhenUnpickled(marker)}, evil)
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(evil), "warmup_frames": 0}, name=node_name)
    try:
        assert not probe.change_state(node_name, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(node_name) == "unconfigured"
        assert node.alive()
    finally:
        node.stop()
    assert not marker.exists(), "the node executed code from the weights file"
    assert (f"configure failed: cannot read weights file {evil}: it holds a pickled Python "
            f"object (posix.mkdir)") in node.output()


def test_weights_of_another_architecture_fail_configure(dds_env, probe, tmp_path, node_name):
    other = tmp_path / "cgnet.pt"
    torch.save(CGNet().state_dict(), other)
    node = start_node(dds_env, tmp_path / "node.log",
                      {"weights": str(other), "warmup_frames": 0}, name=node_name)
    try:
        assert not probe.change_state(node_name, Transition.TRANSITION_CONFIGURE)
        assert probe.get_state(node_name) == "unconfigured"
    finally:
        node.stop()
    assert (f"configure failed: weights {other} do not fit architecture 'swiftnet_lite0': "
            in node.output())
