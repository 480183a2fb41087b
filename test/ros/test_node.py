"""seg_accel_node end to end: a node process, a publisher process, and this test as the user.

Specification: the node follows the ROS 2 lifecycle (driven through its standard services),
publishes labels with the input's header, lazy outputs and 1 Hz diagnostics, and validates
parameters set through the standard parameter services.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import SHARED
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from ros_harness import diagnostics_of, start_node, start_publisher
from sensor_msgs.msg import Image

from seg_accel_ros.ros.parameters import PARAMS

NODE = "seg_accel_node"
VIDEO = SHARED / "data" / "video" / "highway_short_1280x720_25fps.mp4"
DIAG_KEYS = {
    "frames_received", "frames_processed", "frames_dropped", "frames_lost", "frames_rejected",
    "input_rate_hz", "output_rate_hz", "latency_p50_ms", "latency_p95_ms",
    "inference_p50_ms", "inference_p95_ms", "overhead_p95_ms", "overhead_cpu_p95_ms",
    "path_full", "path_low", "path_reuse",
    "model", "device", "mode",
}


@pytest.fixture(scope="module")
def node(dds_env, tmp_path_factory):

    proc = start_node(dds_env, tmp_path_factory.mktemp("node") / "node.log",
                      {"warmup_frames": 1, "warmup_size": "[240, 320]"})
    yield proc
    code = proc.stop()
    assert code in (0, -2), proc.output()


def _stamps(msgs) -> list[int]:
    return [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msgs]


def test_starts_unconfigured_and_rejects_invalid_transitions(node, probe):
    assert probe.get_state(NODE) == "unconfigured"
    assert not probe.change_state(NODE, Transition.TRANSITION_ACTIVATE)
    assert not probe.change_state(NODE, Transition.TRANSITION_DEACTIVATE)
    assert probe.get_state(NODE) == "unconfigured"


def test_parameters_are_declared_with_descriptors(node, probe):
    names = ["model", "max_pixels", "color_alpha", "mode"]
    descriptors = probe.describe_parameters(NODE, names)
    by_name = {d.name: d for d in descriptors}
    assert by_name["model"].read_only
    assert by_name["model"].description
    assert by_name["max_pixels"].integer_range[0].from_value == 1
    assert by_name["color_alpha"].floating_point_range[0].to_value == 1.0
    assert "temporal" in by_name["mode"].additional_constraints


def test_configure_and_activate(node, probe):
    assert probe.change_state(NODE, Transition.TRANSITION_CONFIGURE), node.output()
    assert probe.get_state(NODE) == "inactive"
    assert not probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
    assert probe.change_state(NODE, Transition.TRANSITION_ACTIVATE)
    assert probe.get_state(NODE) == "active"


def test_labels_follow_input_frames(node, probe, dds_env, tmp_path):

    video = ["--source", str(VIDEO)] if VIDEO.is_file() else []
    pub = start_publisher(dds_env, tmp_path / "pub.log", "--rate", "5", "--count", "40",
                          "--width", "640", "--height", "360", *video)
    try:
        labels = probe.collect(Image, f"/{NODE}/labels", 6, timeout=60)
        colors = probe.collect(Image, f"/{NODE}/labels_color", 2, timeout=30)
        paths = probe.collect(Image, f"/{NODE}/path_map", 2, timeout=30)
        diags = probe.collect(DiagnosticArray, "/diagnostics", 2, timeout=10)
    finally:
        pub.stop()
    published = {int(s.replace(".", "")) for s in pub.output().split()
                 if s.replace(".", "").isdigit()}
    assert len(labels) == 6, node.output()
    for msg in labels:
        assert (msg.encoding, msg.height, msg.width, msg.step) == ("mono8", 360, 640, 640)
        ids = np.frombuffer(bytes(msg.data), np.uint8)
        assert ids.size == 360 * 640 and ids.max() < 11
        assert msg.header.frame_id == "camera"
    assert set(_stamps(labels)) <= published
    assert _stamps(labels) == sorted(_stamps(labels))
    assert colors and colors[0].encoding == "rgb8" and colors[0].step == 640 * 3
    assert paths and paths[0].encoding == "mono8"
    assert set(np.frombuffer(bytes(paths[0].data), np.uint8)) <= {0, 1, 2}
    assert diags
    status = next(s for d in diags for s in d.status if diagnostics_of(s, NODE))
    values = {kv.key: kv.value for kv in status.values}
    assert values.keys() >= DIAG_KEYS
    assert int(values["frames_processed"]) > 0
    assert values["model"] == "swiftnet_lite0"


def test_runtime_parameter_is_accepted(node, probe):
    (result,) = probe.set_parameters(NODE, {"color_alpha": 0.5})
    assert result.successful, result.reason
    assert probe.get_parameters(NODE, ["color_alpha"]) == [0.5]


@pytest.mark.parametrize("name, value, why", [
    ("color_alpha", 2.0, ""),
    ("color_alpha", math.nan, ""),
    ("color_alpha", math.inf, ""),
    ("max_pixels", -5, ""),
    ("max_pixels", "many", ""),
    ("stats_window", 3, ""),
    ("palette", [300, 0, 0], "0..255"),
    ("palette", [1, 2], "triples"),
    ("model", "cgnet", "read-only"),
])
def test_bad_parameter_values_are_rejected_with_a_reason(node, probe, name, value, why):
    before = probe.get_parameters(NODE, [name])
    (result,) = probe.set_parameters(NODE, {name: value})
    assert not result.successful
    assert result.reason
    assert why.lower() in result.reason.lower()
    assert probe.get_parameters(NODE, [name]) == before


def test_wrong_type_through_raw_parameter_message_is_rejected(node, probe):
    msg = ParameterMsg(name="max_pixels", value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=float("nan")))
    (result,) = probe.set_parameters(NODE, {"max_pixels": msg})
    assert not result.successful and result.reason


NUMERIC = [p for p in PARAMS if type(p.default) in (int, float)]


def _bad_value(spec, kind: str) -> object:
    typed = type(spec.default)
    return {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf, "negative": typed(-1),
            "below_min": typed(spec.min_value) - (1 if typed is int else 0.05),
            "above_max": typed(spec.max_value) + (1 if typed is int else 0.05),
            "bool": True, "string": "0.5", "list": [1, 2]}[kind]


@pytest.mark.parametrize("kind", ["nan", "+inf", "-inf", "negative", "below_min", "above_max",
                                  "bool", "string", "list"])
def test_every_numeric_parameter_refuses_bad_values_through_the_service(node, probe, kind):
    """What `ros2 param set` would send: rejected with a reason, nothing changes."""
    names = [p.name for p in NUMERIC]
    before = probe.get_parameters(NODE, names)
    results = probe.set_parameters(NODE, {p.name: _bad_value(p, kind) for p in NUMERIC})
    refused = [r for r in results if not r.successful and r.reason]
    assert len(refused) == len(names), [(n, r.successful, r.reason)
                                        for n, r in zip(names, results, strict=True)]
    assert probe.get_parameters(NODE, names) == before
    assert node.alive()


def test_deactivate_cleanup_shutdown(node, probe):
    assert probe.change_state(NODE, Transition.TRANSITION_DEACTIVATE)
    assert probe.get_state(NODE) == "inactive"
    assert probe.change_state(NODE, Transition.TRANSITION_CLEANUP)
    assert probe.get_state(NODE) == "unconfigured"
    assert probe.change_state(NODE, Transition.TRANSITION_CONFIGURE)
    assert probe.change_state(NODE, Transition.TRANSITION_INACTIVE_SHUTDOWN)
    assert probe.get_state(NODE) == "finalized"
    assert node.alive()
