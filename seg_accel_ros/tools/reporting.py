"""Printing and JSON output shared by the command-line tools."""

from __future__ import annotations

import json
import math
from pathlib import Path


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | Path, report: dict) -> Path:
    """Write ``report`` as one JSON object (NaN/inf become null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(report), indent=2, sort_keys=False) + "\n")
    return path


def format_table(rows: list[tuple[str, object]], title: str = "") -> str:
    """Two aligned columns, floats with 2 decimals."""
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title, "-" * max(len(title), 20)] if title else []
    for key, value in rows:
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{key.ljust(width)}  {text}")
    return "\n".join(lines)
