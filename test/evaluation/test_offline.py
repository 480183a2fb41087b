"""Offline evaluation on a hand-made two-frame case: every figure checked against the numbers
worked out by hand in eval_cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from eval_cases import EXPECTED, FakeEngine, tiny_source

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.report import build_report
from seg_accel_ros.evaluation.scoring import path_mix_from_map, percentiles


@pytest.fixture
def report() -> dict:
    evaluation = run_offline(tiny_source(), [EngineConfig(mode="blocks")],
                             engine_factory=FakeEngine)
    return build_report(evaluation)


def test_accuracy_against_the_labels_matches_the_hand_computation(report: dict) -> None:
    assert report["frames"] == 2 and report["labelled_frames"] == 2
    assert report["image_size"] == [4, 4]
    assert report["miou"] == pytest.approx(EXPECTED["miou"])
    assert report["pixel_accuracy"] == pytest.approx(EXPECTED["pixel_accuracy"])
    assert report["class_accuracy"] == pytest.approx(EXPECTED["class_accuracy"])
    assert report["iou_per_class"] == pytest.approx(EXPECTED["iou_per_class"])


def test_fidelity_against_dense_matches_the_hand_computation(report: dict) -> None:
    assert report["fidelity"]["pixel_agreement"] == pytest.approx(EXPECTED["pixel_agreement"])
    assert report["fidelity"]["miou"] == pytest.approx(EXPECTED["fidelity_miou"])
    assert report["dense"]["miou"] == pytest.approx(100.0)  # dense output equals the truth


def test_speed_latency_and_path_mix_are_reported(report: dict) -> None:
    assert report["path_mix"]["full"] * 100 == pytest.approx(EXPECTED["path_full"])
    assert report["path_mix"]["reuse"] == 0.0
    assert report["speed_ratio"] > 0
    dense = report["dense"]["time_ms"]
    assert report["throughput_ratio"] == pytest.approx(dense["mean"] / report["time_ms"]["mean"])
    assert report["time_ms"]["median"] > 0
    assert report["latency_ms"]["p50"] == pytest.approx(report["time_ms"]["median"])
    assert report["evaluation"] == "offline" and report["sweep"] is None


def test_per_frame_records_carry_the_per_frame_figures() -> None:
    evaluation = run_offline(tiny_source(), [EngineConfig(mode="blocks")],
                             engine_factory=FakeEngine)
    records = evaluation.runs[0].scorer.records
    assert [r["index"] for r in records] == [0, 1]
    assert records[0]["pixel_accuracy"] == pytest.approx(50.0)  # 8 of 16
    assert records[1]["pixel_accuracy"] == pytest.approx(100.0)  # 12 of 12 scored
    assert [r["agreement"] for r in records] == pytest.approx([50.0, 100.0])
    assert [r["path_full"] for r in records] == [0.25, 0.5]
    assert all(r["dense_time_ms"] > 0 and r["time_ms"] > 0 for r in records)


def test_without_reference_there_is_no_fidelity_or_speed_ratio() -> None:
    evaluation = run_offline(tiny_source(), [EngineConfig(mode="blocks")], reference=False,
                             engine_factory=FakeEngine)
    report = build_report(evaluation)
    assert report["fidelity"] is None and report["speed_ratio"] is None
    assert report["throughput_ratio"] is None
    assert report["dense"] is None
    assert report["miou"] == pytest.approx(EXPECTED["miou"])


def test_sweep_gives_one_row_per_value() -> None:
    configs = [EngineConfig(mode="blocks", full_fraction=v) for v in (0.1, 0.25, 0.5)]
    evaluation = run_offline(tiny_source(), configs, [f"full_fraction={c.full_fraction}"
                                                      for c in configs],
                             engine_factory=FakeEngine)
    report = build_report(evaluation, "full_fraction")
    rows = report["sweep"]["rows"]
    assert [r["value"] for r in rows] == [0.1, 0.25, 0.5]
    for row in rows:
        assert row["miou"] == pytest.approx(EXPECTED["miou"])
        assert row["pixel_agreement"] == pytest.approx(EXPECTED["pixel_agreement"])
        assert row["speed_ratio"] > 0
        assert row["time_ms_p95"] >= row["time_ms_median"] > 0


def test_a_stamp_jump_resets_the_engines() -> None:
    source = tiny_source()
    frames = list(source.frames())
    jumped = [frames[0], type(frames[1])(1, 5_000_000_000, 5_000_000_000, frames[1].rgb,
                                         frames[1].labels)]
    source.open_frames = lambda: iter(jumped)
    evaluation = run_offline(source, [EngineConfig(mode="blocks")], engine_factory=FakeEngine)
    assert evaluation.stream_resets == 1
    assert [r["stream_reset"] for r in evaluation.runs[0].scorer.records] == [False, True]


def test_path_mix_from_a_path_map_and_percentiles() -> None:
    path_map = np.array([[2, 2, 1, 0]], np.uint8)
    assert path_mix_from_map(path_map) == {"full": 0.5, "low": 0.25, "reuse": 0.25}
    stats = percentiles([float(v) for v in range(1, 101)])
    assert stats["p50"] == 50.5 and stats["p95"] == 95.0 and stats["max"] == 100.0
    assert all(v is None for v in percentiles([]).values())
    assert math.isclose(percentiles([3.0])["p95"], 3.0)
