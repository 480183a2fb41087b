"""The schedule bound: moved labels, each frame's drift, and the best frame schedule, checked
against every schedule of small hand-made cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seg_accel_ros.engine.blocks.reuse import MotionField
from seg_accel_ros.evaluation.schedule_bound import (
    ScheduleBound,
    best_schedule,
    fixed_schedule,
    warp_labels,
)


def test_zero_motion_leaves_labels_unchanged() -> None:
    labels = np.random.default_rng(0).integers(0, 11, (40, 60), dtype=np.uint8)
    assert np.array_equal(warp_labels(labels, MotionField.still(40, 60)), labels)


def test_labels_follow_an_integer_translation() -> None:
    labels = np.random.default_rng(1).integers(0, 11, (48, 64), dtype=np.uint8)
    flow = np.zeros((12, 16, 2), np.float32)
    flow[..., 0], flow[..., 1] = -3.0, 2.0  # each pixel was 3 px left of and 2 px below here
    moved = warp_labels(labels, MotionField(flow, 4.0))
    assert np.array_equal(moved[:-2, 3:], labels[2:, :-3])


def _frames_with_changed_rows(changes: list[int], size: int = 10) -> list[np.ndarray]:
    """Still frames; frame t relabels its first ``changes[t]`` rows to class t."""
    frames = []
    for t, rows in enumerate(changes):
        labels = np.zeros((size, size), np.uint8) if not frames else frames[-1].copy()
        labels[:rows] = t
        frames.append(labels)
    return frames


def test_drift_is_the_share_of_moved_labels_that_differ_k_frames_on() -> None:
    bound = ScheduleBound(11, max_run=2)
    for labels in _frames_with_changed_rows([0, 1, 0, 3]):
        bound.add(labels, MotionField.still(10, 10) if bound.drift else None)
    table = bound.table()
    assert table.shape == (4, 3)
    assert table[:, 0].tolist() == [0, 0, 0, 0]
    assert table[0, 1:].tolist() == [0.1, 0.1]  # frame 1 changed one row, frame 2 none
    assert table[1, 1:].tolist() == [0.0, 0.3]
    assert table[2, 1] == 0.3
    assert np.isinf(table[2, 2]) and np.isinf(table[3, 1:]).all()  # past the end


def test_a_stream_break_makes_the_next_frame_unreachable() -> None:
    bound = ScheduleBound(11, max_run=3)
    still = np.zeros((4, 4), np.uint8)
    for motion in (None, MotionField.still(4, 4), None, MotionField.still(4, 4)):
        bound.add(still, motion)
    table = bound.table()
    assert np.isinf(table[0, 2:]).all() and np.isinf(table[1, 1:]).all()
    assert best_schedule(table, 1) is None  # frame 2 must be computed too
    assert best_schedule(table, 2) == [0, 2]
    assert fixed_schedule(table, 3) == [0, 2]
    assert bound.score([0, 2]) == (1.0, 1.0)


def _agreement(drift: np.ndarray, schedule: list[int]) -> float:
    lost, last = 0.0, 0
    for t in range(drift.shape[0]):
        last = t if t in schedule else last
        lost += drift[last, t - last] if t - last < drift.shape[1] else np.inf
    return 1.0 - lost / drift.shape[0]


def _every_schedule(drift: np.ndarray, computed: int) -> float | None:
    """The brute-force answer: every set of computed frames that includes the first."""
    best = None
    for count in range(1, computed + 1):
        for rest in itertools.combinations(range(1, drift.shape[0]), count - 1):
            agreement = _agreement(drift, [0, *rest])
            if np.isfinite(agreement):
                best = agreement if best is None else max(best, agreement)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_the_best_schedule_is_the_best_of_every_schedule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frames, max_run = 9, 3
    drift = np.cumsum(rng.uniform(0, 0.1, (frames, max_run + 1)), axis=1)
    drift[:, 0] = 0.0
    for s in range(frames):
        drift[s, frames - s:] = np.inf  # beyond the last frame
    drift[5, 2:] = np.inf  # a break before frame 7
    for computed in range(1, frames + 1):
        expected = _every_schedule(drift, computed)
        schedule = best_schedule(drift, computed)
        if expected is None:
            assert schedule is None
        else:
            assert schedule[0] == 0 and len(schedule) <= computed
            assert _agreement(drift, schedule) == pytest.approx(expected, abs=1e-12)


def test_fixed_runs_compute_every_run_plus_one_th_frame() -> None:
    drift = np.array([[0, 0.1, 0.2], [0, 0.3, 0.4], [0, 0.5, 0.6],
                      [0, 0.7, np.inf], [0, np.inf, np.inf]])
    assert fixed_schedule(drift, 1) == [0, 2, 4]
    assert fixed_schedule(drift, 2) == [0, 3]
    assert fixed_schedule(drift, 0) == [0, 1, 2, 3, 4]
    assert fixed_schedule(drift, 5) == [0, 3]  # runs end at max_run anyway


def test_score_counts_the_moved_labels_per_class() -> None:
    bound = ScheduleBound(3, max_run=2)
    first = np.zeros((4, 4), np.uint8)
    second = first.copy()
    second[0] = 1  # one row turns to class 1: moving the first frame's labels misses it
    bound.add(first, None)
    bound.add(second, MotionField.still(4, 4))
    assert bound.score([0, 1]) == (1.0, 1.0)
    agreement, miou = bound.score([0])
    assert agreement == pytest.approx(1 - 0.25 / 2)
    assert miou == pytest.approx((28 / 32 + 0.0) / 2)  # class 0: 28 agreed of 32 shown


def test_summary_gives_the_best_schedule_at_each_share_and_the_fixed_runs() -> None:
    bound = ScheduleBound(11, max_run=2)
    for labels in _frames_with_changed_rows([0, 1, 2, 3, 4, 5]):
        bound.add(labels, MotionField.still(10, 10) if bound.drift else None)
    summary = bound.summary((1.0, 0.5, 0.2))
    assert [row["computed"] for row in summary["best"]] == [6, 3, 1]
    assert summary["best"][0]["agreement"] == summary["best"][0]["miou_vs_dense"] == 1.0
    assert summary["best"][2]["agreement"] is None  # one frame cannot cover six with runs of 2
    assert [row["max_reuse_frames"] for row in summary["fixed"]] == [1, 2]
    assert summary["best"][1]["agreement"] >= summary["fixed"][1]["agreement"]
    assert ScheduleBound(11).summary((0.5,)) == {"frames": 0, "max_run": 8, "best": [],
                                                 "fixed": []}
    with pytest.raises(ValueError, match="max_run"):
        ScheduleBound(11, max_run=-1)
