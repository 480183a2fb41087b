"""The shipped CPU temporal preset, given to the node as ROS 2 gives a parameter file: the node
(in its own process, over DDS) takes every value it sets, keeps the defaults of the others, and
labels frames with it, without the configure-time note that its settings are slow on a CPU.
A file seg_accel_tune writes is taken the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ros_harness import FrameSender, start_node

from seg_accel_ros.ros.parameters import SPECS
from seg_accel_ros.ros.params_file import read_params_file
from seg_accel_ros.tools.tune import main as tune

PROJECT = Path(__file__).resolve().parents[2]
PRESET = PROJECT / "config" / "temporal_cpu_720p.yaml"
NODE = "seg_preset"


def test_the_node_runs_the_cpu_preset_from_its_parameter_file(dds_env, probe, tmp_path):
    preset = read_params_file(PRESET)
    node = start_node(dds_env, tmp_path / "node.log",
                      {"autostart": True, "warmup_frames": 0}, name=NODE,
                      params_files=(PRESET,))
    sender = None
    try:
        others = ["block_size", "keyframe_interval", "low_fusion"]
        values = probe.get_parameters(NODE, [*preset, *others])
        assert dict(zip([*preset, *others], values, strict=True)) == {
            **preset, **{name: SPECS[name].default for name in others}}, node.output()
        sender = FrameSender(probe, NODE)
        rng = np.random.default_rng(0)
        frame = np.repeat(np.repeat(rng.integers(0, 255, (16, 32, 3), np.uint8), 8, 0), 8, 1)
        answered = [sender.send(frame, 10.0 + 0.1 * i, timeout=60) for i in range(3)]
        assert all(msg is not None for msg in answered), node.output()
        assert (answered[-1].height, answered[-1].width) == (128, 256)
        assert probe.get_state(NODE) == "active"
        assert "configured: model" in node.output()
        assert "usually slower than dense" not in node.output()  # whole-frame REUSE: fast
    finally:
        if sender is not None:
            sender.close()
        node.stop()


def test_the_node_runs_a_file_seg_accel_tune_wrote(dds_env, probe, tmp_path):
    tuned = tmp_path / "tuned.yaml"
    assert tune(["generated", "--max-frames", "6", "--resize", "256x128", "--quiet",
                 "--sweep", "max_reuse_frames=2,5", "--min-agreement", "0",
                 "--out", str(tuned)]) == 0
    values = read_params_file(tuned)
    name = "seg_tuned"
    node = start_node(dds_env, tmp_path / "node.log", {"autostart": True, "warmup_frames": 0},
                      name=name, params_files=(tuned,))
    sender = None
    try:
        got = probe.get_parameters(name, list(values))
        assert dict(zip(values, got, strict=True)) == values, node.output()
        sender = FrameSender(probe, name)
        frame = np.zeros((128, 256, 3), np.uint8)
        assert sender.send(frame, 10.0, timeout=60) is not None, node.output()
        assert probe.get_state(name) == "active"
    finally:
        if sender is not None:
            sender.close()
        node.stop()
