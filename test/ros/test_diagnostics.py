"""The node's health report: status name, level and message, values as text."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticStatus

from seg_accel_ros.ros.diagnostics import (
    Findings,
    diagnostic_status,
    format_value,
    health,
    status_name,
)


def _snapshot(rate_in: float, rate_out: float, idle_s: float = 0.0) -> dict[str, object]:
    return {"input_rate_hz": rate_in, "output_rate_hz": rate_out, "latency_p50_ms": math.nan,
            "frames_processed": 12, "input_idle_s": idle_s}


def test_status_names_are_fully_qualified():
    assert status_name("seg_accel_node") == "/seg_accel_node: segmentation"
    assert status_name("/front/seg_accel_node") == "/front/seg_accel_node: segmentation"


def test_ok_while_the_output_keeps_up_with_the_input():
    assert health(_snapshot(30.0, 29.0), True, None) == (DiagnosticStatus.OK, "running")
    assert health(_snapshot(0.0, 0.0), True, None) == (DiagnosticStatus.OK, "running")
    assert health(_snapshot(0.0, 0.0), False, None) == (DiagnosticStatus.OK, "inactive")


def test_warn_below_nine_tenths_of_the_input_rate():
    level, message = health(_snapshot(30.0, 2.5), True, None)
    assert level == DiagnosticStatus.WARN
    assert message == "cannot keep up: 2.5 Hz out of 30.0 Hz in"


def test_a_failure_outranks_a_slow_output():
    failure = "inference failed: RuntimeError: out of memory"
    assert health(_snapshot(30.0, 2.5), True, Findings(failure=failure)) == (
        DiagnosticStatus.ERROR, failure)


def test_rejected_input_is_named_instead_of_a_slow_output():
    """Every frame rejected: the output rate is 0, but the reason is the input, not speed."""
    reason = "unsupported image encoding 'hsv8'"
    findings = Findings(rejected=30, rejected_reason=reason)
    assert health(_snapshot(30.0, 0.0), True, findings) == (
        DiagnosticStatus.WARN, f"rejecting input (30 frames since the last report): {reason}")
    failure = "inference failed: RuntimeError: boom"
    assert health(_snapshot(30.0, 0.0), True, Findings(failure=failure, rejected=1))[0] == (
        DiagnosticStatus.ERROR)


def test_frames_rejected_earlier_do_not_read_as_falling_behind():
    """Rejected and failed frames were dealt with: only dropped ones mean falling behind."""
    snapshot = {**_snapshot(30.0, 10.0), "handled_rate_hz": 29.5}
    assert health(snapshot, True) == (DiagnosticStatus.OK, "running")
    snapshot["handled_rate_hz"] = 20.0
    assert health(snapshot, True) == (DiagnosticStatus.WARN,
                                       "cannot keep up: 20.0 Hz out of 30.0 Hz in")


def test_warn_when_an_active_node_gets_no_input_for_the_timeout():
    quiet = Findings(input_timeout_s=5.0, topic="/front/image_raw")
    assert health(_snapshot(0.0, 0.0, idle_s=4.9), True, quiet) == (DiagnosticStatus.OK,
                                                                      "running")
    assert health(_snapshot(0.0, 0.0, idle_s=5.0), True, quiet) == (
        DiagnosticStatus.WARN, "no input on /front/image_raw for 5.0 s")
    assert health(_snapshot(0.0, 0.0, idle_s=60.0), True, Findings())[0] == DiagnosticStatus.OK
    assert health(_snapshot(0.0, 0.0, idle_s=math.nan), False, quiet) == (
        DiagnosticStatus.OK, "inactive")


def test_a_status_carries_every_value_as_text():
    status = diagnostic_status("/front/seg_accel_node", "cpu",
                               {**_snapshot(10.0, 10.0), "model": "cgnet"}, True, None)
    assert (status.name, status.hardware_id, status.level) == (
        "/front/seg_accel_node: segmentation", "cpu", DiagnosticStatus.OK)
    assert {kv.key: kv.value for kv in status.values} == {
        "input_rate_hz": "10.000", "output_rate_hz": "10.000", "latency_p50_ms": "nan",
        "frames_processed": "12", "input_idle_s": "0.000", "model": "cgnet"}


def test_values_format():
    assert (format_value(1 / 3), format_value(math.nan), format_value(7), format_value("x")) == (
        "0.333", "nan", "7", "x")
