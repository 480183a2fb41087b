"""The temporal policy (issue 5): keyframe period, staleness bound, distortion threshold,
FULL share and the latency controller, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.engine.temporal_policy import LatencyController, TemporalConfig, TemporalPolicy

R, L, F = int(BlockPath.REUSE), int(BlockPath.LOW), int(BlockPath.FULL)
SHAPE = (3, 4)
STILL = np.zeros(SHAPE)
FLAT = np.ones(SHAPE)


def test_first_frame_and_missing_distortion_are_keyframes():
    policy = TemporalPolicy()
    assert (policy.decide(None, FLAT) == F).all()
    assert (policy.decide(STILL, FLAT) != F).any()
    assert (policy.decide(None, FLAT) == F).all()


@pytest.mark.parametrize("interval", [1, 2, 5, 12])
def test_keyframe_period_holds_exactly(interval):
    policy = TemporalPolicy(TemporalConfig(keyframe_interval=interval, max_reuse_frames=1000))
    keyframes = [i for i in range(40) if (policy.decide(STILL, FLAT) == F).all()]
    assert keyframes == list(range(0, 40, interval))


@pytest.mark.parametrize("max_reuse", [0, 1, 3, 7])
def test_no_block_is_reused_more_than_max_reuse_frames_in_a_row(max_reuse):
    policy = TemporalPolicy(TemporalConfig(keyframe_interval=1000, max_reuse_frames=max_reuse))
    streak = np.zeros(SHAPE, int)
    longest = 0
    for _ in range(50):
        paths = policy.decide(STILL, FLAT)
        streak = np.where(paths == R, streak + 1, 0)
        longest = max(longest, int(streak.max()))
    assert longest == max_reuse


def test_distortion_below_threshold_reuses_and_the_complex_changed_blocks_run_full():
    policy = TemporalPolicy(TemporalConfig(reuse_threshold=2.0, full_fraction=0.25))
    policy.decide(None, FLAT)
    distortion = np.array([[0, 0, 0, 0], [5, 5, 5, 5], [5, 5, 5, 5]], float)
    complexity = np.array([[9, 9, 9, 9], [1, 2, 3, 4], [8, 7, 6, 5]], float)
    paths = policy.decide(distortion, complexity)
    assert (paths[0] == R).all()  # unchanged, however complex
    assert sorted(zip(*np.nonzero(paths == F), strict=True)) == [(2, 0), (2, 1), (2, 2)]
    assert (paths == L).sum() == 12 - 4 - 3


def test_full_share_is_capped_by_the_changed_blocks():
    policy = TemporalPolicy(TemporalConfig(full_fraction=1.0))
    policy.decide(None, FLAT)
    distortion = np.zeros(SHAPE)
    distortion[0, 0] = 100
    paths = policy.decide(distortion, FLAT)
    assert (paths == F).sum() == 1 and (paths == R).sum() == 11


def test_resolution_change_is_a_keyframe():
    policy = TemporalPolicy()
    policy.decide(None, FLAT)
    assert (policy.decide(np.zeros((2, 2)), np.ones((2, 2))) == F).all()


def frame_policy(**config) -> TemporalPolicy:
    policy = TemporalPolicy(TemporalConfig(reuse_granularity="frame", **config))
    policy.decide(None, FLAT)
    return policy


def test_frame_granularity_reuses_all_blocks_or_none_by_the_mean_distortion():
    policy = frame_policy(reuse_threshold=2.0, full_fraction=0.25, max_reuse_frames=1000)
    mostly_still = np.zeros(SHAPE)
    mostly_still[0, 0] = 12.0  # one changed block; the frame's mean is 1.0
    assert (policy.decide(mostly_still, FLAT) == R).all()
    changed = np.full(SHAPE, 3.0)
    changed[0, 0] = 0.0  # one still block; the frame's mean is 2.75
    paths = policy.decide(changed, np.arange(12.0).reshape(SHAPE))
    assert not (paths == R).any()  # no block REUSEd, however still
    assert sorted(zip(*np.nonzero(paths == F), strict=True)) == [(2, 1), (2, 2), (2, 3)]


@pytest.mark.parametrize("max_reuse", [0, 1, 2, 5])
def test_frame_granularity_bounds_the_frames_reused_in_a_row(max_reuse):
    policy = frame_policy(keyframe_interval=1000, max_reuse_frames=max_reuse)
    kinds = "".join("R" if (policy.decide(STILL, FLAT) == R).all() else "C" for _ in range(24))
    assert kinds == ("R" * max_reuse + "C") * (24 // (max_reuse + 1)) + \
        ("R" * max_reuse + "C")[: 24 % (max_reuse + 1)]


def test_measured_drift_sets_how_long_the_next_reuse_run_lasts():
    """Runs last ``floor(budget / drift per frame)`` frames, within 0..max_reuse_frames."""
    policy = frame_policy(keyframe_interval=1000, max_reuse_frames=5, full_fraction=1.0,
                          reuse_drift_budget=0.0625)
    policy.decide(None, FLAT)

    def kinds(n: int) -> str:
        return "".join("R" if (policy.decide(STILL, FLAT) == R).all() else "C"
                       for _ in range(n))

    assert kinds(4) == "RRRR"  # nothing measured yet: max_reuse_frames
    assert kinds(2) == "RC"
    policy.observe_drift(0.1875)  # carried 6 frames, 3.1% a frame: two keep within 6.25%
    assert policy.reuse_run_limit == 2 and kinds(3) == "RRC"
    policy.observe_drift(0.2)  # carried 3 frames: 6.7% a frame, over the budget at once
    assert policy.reuse_run_limit == 0 and kinds(3) == "CCC"
    assert not policy.next_is_all_full()  # computed frames need the motion, to measure drift
    policy.observe_drift(0.0)  # labels that hold: back to max_reuse_frames
    assert policy.reuse_run_limit == 5
    policy.set(reuse_drift_budget=0.0)  # off: drift reports are ignored
    policy.observe_drift(0.5)
    assert policy.reuse_run_limit == 5


@pytest.mark.parametrize("max_reuse", [3, 4, 7])
def test_an_all_full_frame_restarts_the_keyframe_count(max_reuse):
    """Computed frames that are all FULL count as keyframes: the 12-frame clock never cuts a
    REUSE run short, so every run has ``max_reuse`` frames."""
    policy = frame_policy(keyframe_interval=12, max_reuse_frames=max_reuse, full_fraction=1.0)
    kinds = "".join("R" if (policy.decide(STILL, FLAT) == R).all() else "C" for _ in range(40))
    assert kinds == ("R" * max_reuse + "C") * (40 // (max_reuse + 1)) + \
        ("R" * max_reuse + "C")[: 40 % (max_reuse + 1)]


def test_a_full_low_mix_does_not_restart_the_keyframe_count():
    policy = frame_policy(keyframe_interval=5, max_reuse_frames=1, full_fraction=0.5)
    kinds = []
    for _ in range(10):
        paths = policy.decide(STILL, FLAT)
        kinds.append("K" if (paths == F).all() else "R" if (paths == R).all() else "M")
    assert "".join(kinds) == "RMRMKRMRMK"


def test_the_policy_says_when_the_next_frame_is_all_full_whatever_the_motion():
    policy = frame_policy(keyframe_interval=4, max_reuse_frames=1, full_fraction=1.0)
    assert not policy.next_is_all_full()  # may be REUSEd
    policy.decide(STILL, FLAT)  # REUSE: the streak is at its bound
    assert policy.next_is_all_full()
    assert (policy.decide(STILL, FLAT) == F).all()
    mixed = frame_policy(keyframe_interval=4, max_reuse_frames=1, full_fraction=0.5)
    mixed.decide(STILL, FLAT)
    assert not mixed.next_is_all_full()  # computed, but FULL and LOW
    mixed.decide(STILL, FLAT)
    mixed.decide(STILL, FLAT)
    assert mixed.next_is_all_full()  # the keyframe is due
    blocks = TemporalPolicy(TemporalConfig(keyframe_interval=10, max_reuse_frames=1,
                                           full_fraction=1.0, reuse_threshold=2.0))
    assert blocks.next_is_all_full()  # no frame yet
    blocks.decide(None, FLAT)
    assert not blocks.next_is_all_full()  # per block: the threshold decides
    half_still = np.where(np.arange(SHAPE[1]) < 2, 0.0, 9.0) * np.ones(SHAPE)
    blocks.decide(half_still, FLAT)  # the left blocks REUSEd: their streak is at the bound
    assert not blocks.next_is_all_full()  # the right ones may be REUSEd next
    blocks.decide(None, FLAT)
    blocks.decide(STILL, FLAT)  # every block REUSEd: every streak at its bound
    assert blocks.next_is_all_full()


def test_a_keyframe_with_the_grid_shape_given_computes_no_scores():
    def scores() -> np.ndarray:
        raise AssertionError("scores computed for a keyframe")

    assert (TemporalPolicy().decide(None, scores, SHAPE) == F).all()


def test_scores_are_computed_only_when_they_rank_blocks():
    calls = []

    def scores() -> np.ndarray:
        calls.append(1)
        return FLAT

    for granularity in ("block", "frame"):
        calls.clear()
        policy = TemporalPolicy(TemporalConfig(reuse_granularity=granularity))
        policy.decide(None, scores)  # a keyframe: the scores give the grid's shape
        assert (policy.decide(STILL, scores) == R).all()
        assert len(calls) == 1
        moving = np.full(SHAPE, 50.0)
        assert (policy.decide(moving, scores) != R).all()
        assert len(calls) == 2
        policy.set(full_fraction=1.0)  # every computed block FULL: nothing to rank
        assert (policy.decide(moving, scores) == F).all()
        assert len(calls) == 2


@pytest.mark.parametrize("bad", [{"reuse_threshold": float("nan")}, {"reuse_threshold": -1},
                                 {"full_fraction": 1.5}, {"keyframe_interval": 0},
                                 {"max_reuse_frames": -1}, {"target_latency_ms": float("inf")},
                                 {"motion_downscale": 0}, {"reuse_granularity": "pixel"},
                                 {"reuse_drift_budget": 1.5},
                                 {"reuse_drift_budget": 0.05, "reuse_granularity": "block"},
                                 {"reuse_drift_budget": 0.05, "reuse_granularity": "frame",
                                  "pipelined": True}])
def test_bad_configuration_is_rejected(bad):
    with pytest.raises(ValueError):
        TemporalConfig(**bad)


def test_latency_controller_trades_full_blocks_for_reuse_when_too_slow():
    policy = TemporalPolicy(TemporalConfig(reuse_threshold=2.0, full_fraction=0.5,
                                           target_latency_ms=100.0))
    for _ in range(5):
        policy.observe(200.0)
    threshold, full = policy.effective
    assert threshold > 2.0 and full < 0.5
    for _ in range(20):
        policy.observe(50.0)
    threshold, full = policy.effective
    assert threshold < 2.0 and full == pytest.approx(min(1.0, 0.5 / policy.controller.scale))


def test_latency_controller_is_bounded_and_ignores_bad_samples():
    c = LatencyController(gain=1.0, limit=2.0)
    for _ in range(100):
        c.update(1e9, 1.0)
    assert c.log_scale == 2.0
    c.update(float("nan"), 1.0)
    c.update(0.0, 1.0)
    assert c.log_scale == 2.0


def test_without_target_the_thresholds_stay_fixed():
    policy = TemporalPolicy(TemporalConfig(reuse_threshold=3.0, full_fraction=0.2))
    policy.observe(1e6)
    assert policy.effective == (3.0, 0.2)
