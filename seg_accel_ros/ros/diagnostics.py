"""The node's health report on /diagnostics: one DiagnosticStatus built from a statistics
snapshot, with its level (OK, WARN when it cannot keep up, ERROR while inference fails)."""

from __future__ import annotations

from collections.abc import Mapping

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


def health(snapshot: Mapping[str, object], active: bool, failure: str | None
           ) -> tuple[bytes, str]:
    """(level, message): ERROR with ``failure`` (a frame failed since the last report, or the
    last frame failed), WARN when an active node's output rate falls below
    :data:`KEEP_UP_SHARE` of its input rate, OK otherwise."""
    if failure is not None:
        return DiagnosticStatus.ERROR, failure
    rate_in, rate_out = float(snapshot["input_rate_hz"]), float(snapshot["output_rate_hz"])
    if active and rate_in > 0 and rate_out < KEEP_UP_SHARE * rate_in:
        return (DiagnosticStatus.WARN,
                f"cannot keep up: {rate_out:.1f} Hz out of {rate_in:.1f} Hz in")
    return DiagnosticStatus.OK, "running" if active else "inactive"


def diagnostic_status(node: str, hardware_id: str, values: Mapping[str, object], active: bool,
                      failure: str | None) -> DiagnosticStatus:
    """The status of fully qualified node ``node``: :func:`health` of ``values`` (a statistics
    snapshot and the node's own keys), every value as text."""
    status = DiagnosticStatus()
    status.name = status_name(node)
    status.hardware_id = hardware_id
    status.level, status.message = health(values, active, failure)
    status.values = [KeyValue(key=k, value=format_value(v)) for k, v in values.items()]
    return status


def format_value(value: object) -> str:
    """Floats with three decimals ("nan" when unknown), everything else as ``str``."""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)
