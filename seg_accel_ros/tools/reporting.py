"""Printing and JSON output shared by the command-line tools."""

from __future__ import annotations

from seg_accel_ros.evaluation.report import write_json

__all__ = ["format_table", "write_json"]


def format_table(rows: list[tuple[str, object]], title: str = "") -> str:
    """Two aligned columns, floats with 2 decimals."""
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title, "-" * max(len(title), 20)] if title else []
    for key, value in rows:
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)
