"""Shared fixtures: the ../shared folder (skip when absent) and per-test DDS isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEG_ACCEL_SHARED", PROJECT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is absent on this machine)")
    return path


@pytest.fixture
def camvid_root() -> Path:
    return shared_path("data", "camvid")
