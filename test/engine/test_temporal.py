"""The temporal engine end to end (issue 5): REUSE of unchanged and of moved content, keyframes,
staleness, resets, and live reconfiguration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scenes import scene

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

R, F = int(BlockPath.REUSE), int(BlockPath.FULL)


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
