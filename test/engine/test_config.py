"""EngineConfig's note on settings that are not expected to beat dense on their device."""

from __future__ import annotations

import pytest

from seg_accel_ros.engine.config import EngineConfig, speed_note


def test_per_block_reuse_on_a_cpu_is_named_slow_and_points_at_the_frame_presets() -> None:
    note = speed_note(EngineConfig(mode="temporal"))
    assert note is not None
    assert "reuse_granularity: block" in note
    assert "config/temporal_cpu.yaml" in note and "config/temporal_cpu_720p.yaml" in note


def test_blocks_mode_on_a_cpu_is_named_slow() -> None:
    note = speed_note(EngineConfig(mode="blocks"))
    assert note is not None and note.startswith("blocks mode")


def test_blocks_mode_on_a_gpu_is_named_slow_with_the_measurement() -> None:
    note = speed_note(EngineConfig(mode="blocks", device="cuda:0"))
    assert note is not None and note.startswith("blocks mode is much slower than dense on a GPU")
    assert "12.6x" in note


@pytest.mark.parametrize("config", [
    EngineConfig(mode="dense"),
    EngineConfig(mode="dense", device="cuda"),
    EngineConfig(mode="temporal", reuse_granularity="frame", full_fraction=1.0),
    EngineConfig(mode="temporal", device="cuda"),
], ids=["dense", "dense-cuda", "frame-reuse", "temporal-cuda"])
def test_settings_measured_fast_or_not_measured_get_no_note(config: EngineConfig) -> None:
    assert speed_note(config) is None
