"""The schedule bound: moved labels, each frame's drift, and the best frame schedule, checked
against every schedule of small hand-made cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seg_accel_ros.engine.blocks.reuse import MotionField
from seg_accel_ros.evaluation.schedule_bound import (
    ScheduleBound,
    best_schedule_agreement,
    fixed_schedule_agreement,
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
    bound = ScheduleBound(max_run=2)
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
    bound = ScheduleBound(max_run=3)
    still = np.zeros((4, 4), np.uint8)
    for motion in (None, MotionField.still(4, 4), None, MotionField.still(4, 4)):
        bound.add(still, motion)
    table = bound.table()
    assert np.isinf(table[0, 2:]).all() and np.isinf(table[1, 1:]).all()
    assert bound.best_agreement(1) is None  # frame 2 must be computed too
    assert bound.best_agreement(2) == 1.0
    assert bound.fixed_agreement(3) == (0.5, 1.0)


def _every_schedule(drift: np.ndarray, computed: int) -> float | None:
    """The brute-force answer: every set of computed frames that includes the first."""
    frames, width = drift.shape
    best = None
    for count in range(1, computed + 1):
        for rest in itertools.combinations(range(1, frames), count - 1):
            chosen, lost, last = {0, *rest}, 0.0, 0
            for t in range(frames):
                if t in chosen:
                    last = t
                elif t - last >= width or not np.isfinite(drift[last, t - last]):
                    lost = np.inf
                else:
                    lost += drift[last, t - last]
            if np.isfinite(lost):
                agreement = 1.0 - lost / frames
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
        assert best_schedule_agreement(drift, computed) == pytest.approx(
            _every_schedule(drift, computed), abs=1e-12)


def test_fixed_runs_compute_every_run_plus_one_th_frame() -> None:
    drift = np.array([[0, 0.1, 0.2], [0, 0.3, 0.4], [0, 0.5, 0.6],
                      [0, 0.7, np.inf], [0, np.inf, np.inf]])
    assert fixed_schedule_agreement(drift, 1) == (0.6, pytest.approx(1 - (0.1 + 0.5) / 5))
    assert fixed_schedule_agreement(drift, 2) == (0.4, pytest.approx(1 - (0.1 + 0.2 + 0.7) / 5))
    assert fixed_schedule_agreement(drift, 0) == (1.0, 1.0)


def test_summary_gives_the_bound_at_each_share_and_the_fixed_runs() -> None:
    bound = ScheduleBound(max_run=2)
    for labels in _frames_with_changed_rows([0, 1, 2, 3, 4, 5]):
        bound.add(labels, MotionField.still(10, 10) if bound.drift else None)
    summary = bound.summary((1.0, 0.5, 0.2))
    assert [row["computed"] for row in summary["best"]] == [6, 3, 1]
    assert summary["best"][0]["agreement"] == 1.0
    assert summary["best"][2]["agreement"] is None  # one frame cannot cover six with runs of 2
    assert [row["max_reuse_frames"] for row in summary["fixed"]] == [1, 2]
    assert summary["best"][1]["agreement"] >= summary["fixed"][1]["agreement"]
    with pytest.raises(ValueError, match="max_run"):
        ScheduleBound(max_run=-1)
