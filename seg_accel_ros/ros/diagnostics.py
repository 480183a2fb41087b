"""The node's health report on /diagnostics: one DiagnosticStatus built from a statistics
snapshot, with its level (OK; WARN when it rejects input, gets none or cannot keep up; ERROR
while inference fails)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

KEEP_UP_SHARE = 0.9  # WARN when fewer than this share of the input frames come out
# values only a temporal-mode node reports (label ages: only where they are tracked)
TEMPORAL_VALUES = ("cache_misses", "network_runs_pipelined", "label_age_p50_frames",
                   "label_age_max_frames")


def status_name(node: str) -> str:
    """The name of ``node``'s status: its fully qualified name (a bare name is taken as one in
    the root namespace) and the task, ``"/front/seg_accel_node: segmentation"``. Two cameras'
    nodes of the same name in two namespaces stay apart."""
    return f"{node if node.startswith('/') else '/' + node}: segmentation"


@dataclass(frozen=True)
class Findings:
    """What the node saw since its last report, beyond the statistics snapshot."""

    failure: str | None = None  # a frame failed since the last report, or the last one did
    rejected: int = 0  # frames rejected as bad input since the last report
    rejected_reason: str = ""  # why the last of them was
    input_timeout_s: float = 0.0  # WARN after this long without input (0: never)
    topic: str = ""  # the input topic, for the message


def health(snapshot: Mapping[str, object], active: bool, findings: Findings | None = None
           ) -> tuple[bytes, str]:
    """(level, message), the first that applies: ERROR with a failure; WARN while frames are
    rejected, when an active node got no input for ``input_timeout_s``, or when the rate of
    frames it deals with (published, rejected or failed; ``handled_rate_hz``) falls below
    :data:`KEEP_UP_SHARE` of its input rate; OK otherwise."""
    findings = findings or Findings()
    if findings.failure is not None:
        return DiagnosticStatus.ERROR, findings.failure
    if findings.rejected:
        frames = "frame" if findings.rejected == 1 else "frames"
        return (DiagnosticStatus.WARN, f"rejecting input ({findings.rejected} {frames} since "
                f"the last report): {findings.rejected_reason}")
    idle = float(snapshot.get("input_idle_s", math.nan))
    if active and findings.input_timeout_s > 0 and idle >= findings.input_timeout_s:
        return (DiagnosticStatus.WARN,
                f"no input on {findings.topic or 'the image topic'} for {idle:.1f} s")
    # rejected and failed frames were dealt with too: only frames dropped unprocessed count
    rate_in = float(snapshot["input_rate_hz"])
    rate_out = float(snapshot.get("handled_rate_hz", snapshot["output_rate_hz"]))
    if active and rate_in > 0 and rate_out < KEEP_UP_SHARE * rate_in:
        return (DiagnosticStatus.WARN,
                f"cannot keep up: {rate_out:.1f} Hz out of {rate_in:.1f} Hz in")
    return DiagnosticStatus.OK, "running" if active else "inactive"


def diagnostic_status(node: str, hardware_id: str, values: Mapping[str, object], active: bool,
                      findings: Findings | None = None) -> DiagnosticStatus:
    """The status of fully qualified node ``node``: :func:`health` of ``values`` (a statistics
    snapshot and the node's own keys), every value as text."""
    status = DiagnosticStatus()
    status.name = status_name(node)
    status.hardware_id = hardware_id
    status.level, status.message = health(values, active, findings)
    status.values = [KeyValue(key=k, value=format_value(v)) for k, v in values.items()]
    return status


def format_value(value: object) -> str:
    """Floats with three decimals ("nan" when unknown), everything else as ``str``."""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)
