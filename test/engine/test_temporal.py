"""The temporal engine end to end (issue 5): REUSE of unchanged and of moved content, keyframes,
staleness, resets, and live reconfiguration."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from scenes import scene

from seg_accel_ros.engine.background import BackgroundNetwork
from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.blocks.reuse import CacheMissError, MotionField
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.engine.motion import MotionEstimator
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.engine.temporal import TemporalEngine, moved_result
from seg_accel_ros.engine.temporal_policy import TemporalConfig
from seg_accel_ros.models.registry import create_model

R, L, F = int(BlockPath.REUSE), int(BlockPath.LOW), int(BlockPath.FULL)


@pytest.fixture(scope="module")
def model():
    torch.set_flush_denormal(True)
    return create_model("swiftnet_lite0", None, torch.device("cpu"))


def block_paths(result, block: int = 128) -> np.ndarray:
    return result.path_map[::block, ::block]


def test_identical_frames_are_all_reuse_with_the_same_labels(model):
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=1.0))
    img = scene()
    first = engine.process(img)
    second = engine.process(img.copy())
    assert (block_paths(first) == F).all()
    assert (block_paths(second) == R).all()
    assert second.path_mix["reuse"] == 1.0
    np.testing.assert_array_equal(second.labels, first.labels)


def test_known_translation_reuses_the_shifted_labels(model):
    """The camera pans: content moves 16 px left. The flow finds it, blocks are REUSEd and
    their labels are the previous labels shifted, away from the borders."""
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=6.0))
    wide = scene(256, 416, seed=3)
    first = engine.process(wide[:, 16:16 + 384].copy())  # previous view
    second = engine.process(wide[:, 32:32 + 384].copy())  # view 16 px further right
    paths = block_paths(second)
    assert (paths == R).sum() >= 4
    expected = np.zeros_like(first.labels)
    expected[:, :-16] = first.labels[:, 16:]
    reuse_px = second.path_map == R
    interior = np.zeros_like(reuse_px)
    interior[16:-16, 16:-32] = True
    sel = reuse_px & interior
    assert (second.labels[sel] == expected[sel]).mean() >= 0.99


def test_keyframe_interval_and_staleness_hold_in_the_engine(model):
    engine = TemporalEngine(model, TemporalConfig(keyframe_interval=5, max_reuse_frames=2,
                                                  reuse_threshold=1.0))
    img = scene(128, 256)
    kinds = []
    for _ in range(11):
        p = block_paths(engine.process(img))
        kinds.append("K" if (p == F).all() else "R" if (p == R).all() else "C")
    # keyframes at 0, 5, 10; at most 2 REUSE frames in a row, then the blocks are recomputed
    assert "".join(kinds) == "KRRCRKRRCRK"


def test_resolution_change_and_reset_start_a_fresh_cache(model):
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=1.0))
    img = scene()
    engine.process(img)
    assert (block_paths(engine.process(scene(128, 256))) == F).all()  # new size: keyframe
    engine.process(img)
    engine.reset()  # e.g. the node saw the stamps jump back
    assert (block_paths(engine.process(img)) == F).all()


def test_frames_of_an_odd_size_keep_it_on_every_path_mix(model):
    """127 x 255 (odd, like KITTI's 375 rows): all-LOW frames see half-resolution sizes
    rounded up; their labels still have the image's size and later frames REUSE them."""
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=1.0, max_reuse_frames=1))
    img = scene(127, 255)
    mixes = []
    for _ in range(6):
        result = engine.process(img)
        assert result.labels.shape == (127, 255)
        mixes.append(max(result.path_mix, key=result.path_mix.get))
    assert "low" in mixes and mixes.count("reuse") >= 2
    assert engine.cache_misses == 0


def test_live_reconfiguration_applies_to_the_next_frame(model):
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=1.0))
    img = scene()
    engine.process(img)
    engine.configure(reuse_threshold=0.0)  # nothing is below 0: every block is recomputed
    assert (block_paths(engine.process(img)) != R).all()
    with pytest.raises(ValueError):
        engine.configure(keyframe_interval=0)


def test_factory_builds_the_temporal_engine():
    engine = build_engine(EngineConfig(mode="temporal", reuse_threshold=3.0, max_reuse_frames=2))
    assert isinstance(engine, TemporalEngine)
    assert engine.policy.config.reuse_threshold == 3.0
    assert engine.policy.config.max_reuse_frames == 2
    out = engine.process(scene(128, 128))
    assert out.labels.shape == (128, 128)


def frame_engine(model, **config) -> TemporalEngine:
    return TemporalEngine(model, TemporalConfig(reuse_granularity="frame", **config))


class CountingMotion(MotionEstimator):
    """The real estimator, counting the frames it estimated motion for."""

    calls = 0

    def estimate(self, current, previous):
        self.calls += 1
        return super().estimate(current, previous)


def test_frames_that_must_be_computed_skip_motion_estimation(model):
    engine = frame_engine(model, reuse_threshold=255.0, max_reuse_frames=2,
                          keyframe_interval=12, full_fraction=1.0)
    engine.motion = CountingMotion(engine.motion.downscale)
    img = scene()
    dense = DenseEngine(model).process(img).labels
    kinds = []
    for _ in range(7):
        result = engine.process(img.copy())
        kinds.append("R" if (block_paths(result) == R).all() else "F")
        if kinds[-1] == "F":
            np.testing.assert_array_equal(result.labels, dense)
    assert "".join(kinds) == "FRRFRRF"
    assert engine.motion.calls == 4  # the REUSE frames only


def test_reuse_runs_shorten_where_the_labels_drift_and_lengthen_where_they_hold(model):
    """Identical frames keep their labels: REUSE runs of max_reuse_frames. Frames alternating
    between two scenes make REUSE's labels wrong: each computed frame measures that drift and
    the next frames are computed, until the labels hold again."""
    engine = frame_engine(model, reuse_threshold=255.0, max_reuse_frames=3,
                          keyframe_interval=1000, full_fraction=1.0, reuse_drift_budget=0.05)
    a, b = scene(seed=0), scene(seed=1)
    dense_b = DenseEngine(model).process(b).labels
    assert np.mean(DenseEngine(model).process(a).labels != dense_b) > 0.2
    frames = [a] * 8 + [b, a] * 4 + [a] * 6

    kinds = ""
    for frame in frames:
        result = engine.process(frame.copy())
        kinds += "R" if (block_paths(result) == R).all() else "C"
        assert "drift" in result.timings_ms or kinds[-1] == "R" or len(kinds) == 1
    assert kinds[:8] == "CRRRCRRR"
    assert kinds[8:16] == "CCCCCCCC"  # a's labels carried to b drift: every frame computed
    assert kinds[16:] == "CRRRCR"  # a after a: no drift, runs of max_reuse_frames again


def _maps_bytes(result) -> int:
    return result.labels.nbytes + (0 if result.confidence is None else result.confidence.nbytes)


def test_frame_granularity_keyframes_are_the_dense_network_and_cache_only_the_labels(model):
    engine = frame_engine(model, reuse_threshold=1.0)
    img = scene()
    key = engine.process(img)
    assert (block_paths(key) == F).all()
    np.testing.assert_array_equal(key.labels, DenseEngine(model).process(img).labels)
    assert engine.blocks.last_cache is None  # no feature tables
    assert key.cache_bytes == _maps_bytes(key)
    again = engine.process(img.copy())
    assert (block_paths(again) == R).all()
    np.testing.assert_array_equal(again.labels, key.labels)


def test_frame_granularity_reuses_the_whole_frame_moved(model):
    engine = frame_engine(model, reuse_threshold=6.0)
    wide = scene(256, 416, seed=3)
    first = engine.process(wide[:, 16:16 + 384].copy())
    second = engine.process(wide[:, 32:32 + 384].copy())  # the view moved 16 px right
    assert (block_paths(second) == R).all()
    expected = first.labels[16:-16, 32:-16]
    assert (second.labels[16:-16, 16:-32] == expected).mean() >= 0.99


def test_frame_granularity_alternates_reused_and_computed_frames(model):
    """Computed frames between keyframes take the FULL/LOW mix of ``full_fraction`` (M)."""
    img = scene(128, 256)
    for full_fraction, expected in ((1.0, "FRFRFRFR"), (0.5, "FRMRMRFR")):
        engine = frame_engine(model, keyframe_interval=6, max_reuse_frames=1,
                              reuse_threshold=1.0, full_fraction=full_fraction)
        kinds = []
        for _ in range(8):
            p = block_paths(engine.process(img))
            kinds.append("F" if (p == F).all() else "R" if (p == R).all() else "M")
        assert "".join(kinds) == expected
        assert engine.cache_misses == 0


def _dense_keyframe_engine(model, confidence: bool = False) -> BlockEngine:
    """The block machinery as frame-granular REUSE with LOW fusion runs it."""
    blocks = BlockEngine(model, confidence=confidence)
    blocks.model.dense_keyframes = True
    return blocks


def test_a_dense_keyframe_cache_cannot_serve_a_partly_reused_frame(model):
    blocks = _dense_keyframe_engine(model)
    img = scene()
    grid = blocks.grid(*img.shape[:2])
    blocks.process(img, np.full(grid.shape, F), (None, None))
    paths = np.full(grid.shape, R)
    paths[0, 0] = F
    motion = MotionField.still(*img.shape[:2])
    with pytest.raises(CacheMissError):
        blocks.process(img, paths, (blocks.last_cache, motion))


def test_moved_labels_are_what_the_feature_cache_gives(model):
    """Frame-granular REUSE moves the previous labels itself; the feature cache of a dense
    keyframe, moved by the same motion, gives the same maps, frame after frame."""
    wide = scene(256, 448, seed=5)
    frames = [wide[:, 8 * i:8 * i + 384].copy() for i in range(3)]  # panning 8 px a frame
    estimator = MotionEstimator(2)
    blocks = _dense_keyframe_engine(model, confidence=True)
    grid = blocks.grid(*frames[0].shape[:2])
    previous = blocks.process(frames[0], np.full(grid.shape, F), (None, None))
    moved = previous
    for before, now in zip(frames[:-1], frames[1:], strict=True):
        motion = estimator.estimate(estimator.prepare(now), estimator.prepare(before))
        cached = blocks.process(now, np.full(grid.shape, R), (blocks.last_cache, motion))
        moved = moved_result(moved, motion, cached.path_map)
        np.testing.assert_array_equal(moved.labels, cached.labels)
        np.testing.assert_array_equal(moved.confidence, cached.confidence)
        assert not np.array_equal(moved.labels, previous.labels)  # they did move


def test_switching_granularity_live_starts_with_a_keyframe(model):
    engine = TemporalEngine(model, TemporalConfig(reuse_threshold=1.0))
    img = scene()
    engine.process(img)
    assert (block_paths(engine.process(img)) == R).all()
    engine.configure(reuse_granularity="frame")
    key = engine.process(img)
    assert (block_paths(key) == F).all()
    assert key.cache_bytes == _maps_bytes(key)
    assert (block_paths(engine.process(img)) == R).all()
    engine.configure(reuse_granularity="block")
    assert (block_paths(engine.process(img)) == F).all()
    assert len(engine.blocks.last_cache.ops) > 1  # every level: blocks may be REUSEd alone
    with pytest.raises(ValueError):
        engine.configure(reuse_granularity="pixel")


def pipelined_engine(model, gate: threading.Event | None = None, **config) -> TemporalEngine:
    """A pipelined engine whose computed frames are all FULL (unless ``config`` says
    otherwise); with ``gate``, its second thread finishes a frame only once the gate is open
    (the network itself still runs)."""
    engine = frame_engine(model, pipelined=True, motion_downscale=1,
                          **{"full_fraction": 1.0, **config})
    if gate is not None:
        def gated(image, *args):
            gate.wait()
            return engine.segment_whole(image, *args)
        engine.background = BackgroundNetwork(gated)
    return engine


def pan(steps: int, step: int = 16, width: int = 256):
    """Views of one wide scene, each ``step`` px further right."""
    wide = scene(192, width + steps * step, seed=3)
    return [wide[:, i * step:i * step + width].copy() for i in range(steps)]


def _shifted_agreement(labels, earlier, shift: int, margin: int = 16) -> float:
    """Agreement of ``labels`` with ``earlier`` moved ``shift`` px left, away from borders."""
    return float((labels[margin:-margin, margin:-margin - shift]
                  == earlier[margin:-margin, margin + shift:-margin]).mean())


def test_pipelined_answers_at_once_and_the_network_labels_join_when_ready(model):
    """The first frame is computed; later frames get the newest labels moved to them while
    the second thread segments a frame, whose labels the next frame carries over."""
    views = pan(3)
    dense = DenseEngine(model)
    engine = pipelined_engine(model, reuse_threshold=0.0, max_reuse_frames=0)
    first = engine.process(views[0])
    assert (block_paths(first) == F).all() and first.label_age == 0
    np.testing.assert_array_equal(first.labels, dense.process(views[0]).labels)
    second = engine.process(views[1])  # answered by moving the first; the network starts on it
    assert (block_paths(second) == R).all() and second.label_age == 1
    assert engine.background.busy
    engine.background.wait()
    third = engine.process(views[2])  # the second frame's network labels, moved one frame
    assert third.label_age == 1 and engine.network_runs == 1
    assert _shifted_agreement(third.labels, dense.process(views[1]).labels, 16) >= 0.98
    engine.reset()


def test_pipelined_second_thread_runs_the_policys_paths(model):
    """The second thread segments a frame as the policy decided it: with ``full_fraction``
    0 every block LOW, the network on the half-resolution frame (labels sooner on a CPU)."""
    views = pan(2)
    engine = pipelined_engine(model, reuse_threshold=0.0, max_reuse_frames=0,
                              full_fraction=0.0)
    done = []

    def recorded(image, *args):
        done.append(engine.segment_whole(image, *args))
        return done[-1]
    engine.background = BackgroundNetwork(recorded)
    assert (block_paths(engine.process(views[0])) == F).all()  # a keyframe, on this thread
    engine.process(views[1])
    engine.background.wait()
    (low,) = done
    assert (block_paths(low) == L).all()
    grid = engine.blocks.grid(*views[1].shape[:2])
    expected = BlockEngine(model).process(views[1], np.full(grid.shape, L))
    np.testing.assert_array_equal(low.labels, expected.labels)
    engine.reset()


def test_pipelined_labels_are_carried_over_every_frame_that_came_meanwhile(model):
    views = pan(5)
    gate = threading.Event()
    engine = pipelined_engine(model, gate, reuse_threshold=0.0, max_reuse_frames=0)
    engine.process(views[0])
    ages = [engine.process(v).label_age for v in views[1:4]]  # the network is held on frame 1
    assert ages == [1, 2, 3] and engine.background.busy
    gate.set()
    engine.background.wait()
    last = engine.process(views[4])
    assert last.label_age == 3  # frame 1's labels, carried over frames 2, 3 and 4
    network = DenseEngine(model).process(views[1]).labels
    assert _shifted_agreement(last.labels, network, 48) >= 0.97
    engine.reset()


def test_pipelined_reset_and_turning_it_off_wait_for_the_second_thread(model):
    views = pan(3)
    engine = pipelined_engine(model, reuse_threshold=0.0, max_reuse_frames=0)
    engine.process(views[0])
    engine.process(views[1])
    engine.reset()  # waits for the network, forgets its frame
    assert not engine.background.busy
    key = engine.process(views[2])
    assert (block_paths(key) == F).all() and key.label_age == 0
    engine.process(views[1])
    engine.configure(pipelined=False)  # the next frame runs in the caller's thread again
    out = engine.process(views[2])
    assert not engine.background.busy and out.label_age is not None


def test_pipelined_frame_of_a_new_size_is_computed_and_forgets_the_running_one(model):
    engine = pipelined_engine(model, reuse_threshold=0.0, max_reuse_frames=0)
    views = pan(2)
    engine.process(views[0])
    engine.process(views[1])
    assert engine.background.busy
    other = engine.process(scene(128, 192))
    assert other.labels.shape == (128, 192) and other.label_age == 0
    assert (block_paths(other) == F).all() and not engine.background.busy
    np.testing.assert_array_equal(other.labels, DenseEngine(model).process(scene(128, 192)).labels)


def test_pipelined_policy_threshold_decides_whether_the_network_runs(model):
    """Frames the policy would REUSE do not start the network."""
    engine = pipelined_engine(model, reuse_threshold=255.0, max_reuse_frames=3,
                              keyframe_interval=100)
    img = scene()
    engine.process(img)
    for _ in range(3):
        engine.process(img.copy())
        assert not engine.background.busy  # within max_reuse_frames: nothing to compute
    engine.process(img.copy())
    assert engine.background.busy  # the staleness bound: the network runs on this one
    engine.reset()


def test_a_failing_network_frame_is_reported_and_the_stream_goes_on(model):
    engine = pipelined_engine(model, reuse_threshold=0.0, max_reuse_frames=0)
    calls = []

    def flaky(image, *args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return engine.segment_whole(image, *args)
    engine.background = BackgroundNetwork(flaky)
    views = pan(4)
    engine.process(views[0])
    engine.process(views[1])
    engine.background.wait()
    with pytest.raises(RuntimeError, match="out of memory"):
        engine.process(views[2])
    assert engine.background.failures == 1
    out = engine.process(views[3])
    assert out.labels.shape == views[3].shape[:2] and engine.background.busy
    engine.reset()


def test_pipelined_needs_frame_granularity_and_no_low_fusion(model):
    with pytest.raises(ValueError, match="reuse_granularity"):
        TemporalConfig(pipelined=True)
    with pytest.raises(ValueError, match="low_fusion"):
        EngineConfig(mode="temporal", reuse_granularity="frame", pipelined=True,
                     low_fusion=True)
    engine = frame_engine(model)
    assert engine.check_change(pipelined=True) == ""
    assert "reuse_granularity" in engine.check_change(reuse_granularity="block",
                                                      pipelined=True)
    engine.configure(pipelined=True)
    assert "reuse_granularity" in engine.check_change(reuse_granularity="block")
    with pytest.raises(ValueError):
        engine.configure(reuse_granularity="block")
    assert engine.policy.config.reuse_granularity == "frame"  # nothing changed
