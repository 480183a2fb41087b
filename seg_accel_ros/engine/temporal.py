"""``temporal`` mode: motion-compensated feature reuse (DNP), keyframes (AR-Seg) and
block-sparse FULL / LOW execution (SegBlocks) in one video engine.

Per frame: estimate the motion back to the previous frame, measure what it leaves unexplained
per block, let :class:`TemporalPolicy` pick REUSE / LOW / FULL, run the block engine with the
previous frame's feature cache (REUSE blocks and their neighbours' halos come from it, moved by
the motion), and keep this frame's cache for the next one.

``pipelined`` (frame granularity): every frame after the first is answered at once with the
latest labels moved to it, and the network segments whole frames on a second thread
(:mod:`~seg_accel_ros.engine.background`); its labels join the stream when they are ready,
carried over the motion of the frames that came meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from seg_accel_ros.engine.background import BackgroundNetwork, SourceChain
from seg_accel_ros.engine.blocks import BlockEngine, BlockGrid
from seg_accel_ros.engine.blocks.reuse import (
    CacheMissError,
    FeatureCache,
    MotionField,
    motion_sources,
)
from seg_accel_ros.engine.fusion import CrossResolutionFusion
from seg_accel_ros.engine.learned_policy import LinearBlockScorer
from seg_accel_ros.engine.motion import (
    MotionEstimator,
    block_distortion,
    flow_positions,
    remap_nearest,
)
from seg_accel_ros.engine.policy import ComplexityPolicy
from seg_accel_ros.engine.result import BlockPath, FrameResult
from seg_accel_ros.engine.temporal_policy import (
    PIPELINED_FUSION,
    REUSE,
    TemporalConfig,
    TemporalPolicy,
)
from seg_accel_ros.models.registry import LoadedModel

log = logging.getLogger(__name__)

# The drift is counted on every second row and column: a quarter of the cost of moving the
# whole label map (16-24 -> 3 ms at 720p), the same share within a fraction of a point.
DRIFT_SAMPLE_STEP = 2


class TemporalEngine:
    """Video segmentation that recomputes only what changed, at the resolution it needs."""

    def __init__(self, model: LoadedModel, config: TemporalConfig | None = None,
                 block_size: int = 128, fusion: CrossResolutionFusion | None = None,
                 low_fusion: bool = False, scorer: LinearBlockScorer | None = None) -> None:
        self.model = model
        self.complexity = ComplexityPolicy(block_size=block_size, scorer=scorer)
        self.blocks = BlockEngine(model, block_size=block_size,
                                  confidence=self.complexity.needs_confidence)
        self.fusion = fusion  # LOW blocks fused with moved FULL output, when ``low_fusion``
        self.blocks.model.fusion = fusion if low_fusion else None
        self.policy = TemporalPolicy(config)
        if self.policy.config.pipelined and low_fusion:
            raise ValueError(PIPELINED_FUSION)
        self.motion = MotionEstimator(self.policy.config.motion_downscale)
        self.background = BackgroundNetwork(self.segment_whole)
        self._follow_granularity()
        self.cache_misses = 0
        self.reset()

    @property
    def block_size(self) -> int:
        return self.blocks.block_size

    def reset(self) -> None:
        """Forget the cache (new stream, resolution change, time jump): next frame is a
        keyframe."""
        self.background.close()  # its frame belongs to the stream being forgotten
        self._chain: SourceChain | None = None  # motion since the frame being segmented
        self._cache: FeatureCache | None = None
        self._previous_small: np.ndarray | None = None
        self._previous: FrameResult | None = None
        self.policy.reset()

    @property
    def network_runs(self) -> int:
        """Frames the pipelined mode's second thread has segmented."""
        return self.background.completed

    def check_change(self, **changes: float | int | bool) -> str:
        """Why :meth:`configure` would reject ``changes`` ('' when it takes them)."""
        fusion = bool(changes.get("low_fusion", self.blocks.model.fusion is not None))
        try:
            config = replace(self.policy.config,
                             **{k: v for k, v in changes.items() if k != "low_fusion"})
        except (TypeError, ValueError) as exc:
            return str(exc)
        return PIPELINED_FUSION if config.pipelined and fusion else ""

    def set_full_fraction(self, full_fraction: float) -> None:
        self.policy.set(full_fraction=full_fraction)

    def configure(self, **changes: float | int | bool) -> None:
        """Change policy thresholds live (``reuse_threshold``, ``target_latency_ms`` ...) and
        turn ``low_fusion`` on or off. Raises ValueError (changing nothing) on values
        :meth:`check_change` rejects."""
        reason = self.check_change(**changes)
        if reason:
            raise ValueError(reason)
        light = self._moves_labels_only()
        if "low_fusion" in changes:
            self.blocks.model.fusion = self.fusion if changes.pop("low_fusion") else None
        if "motion_downscale" in changes and changes["motion_downscale"] != \
                self.policy.config.motion_downscale:
            self.motion = MotionEstimator(int(changes["motion_downscale"]))
            self._previous_small = None
        before = self.policy.config.reuse_granularity
        self.policy.set(**changes)
        if self.policy.config.reuse_granularity != before or self._moves_labels_only() != light:
            self._follow_granularity()
            self.reset()  # the caches of the two granularities hold different things

    def _moves_labels_only(self) -> bool:
        """Frame-granular REUSE without LOW fusion keeps no feature cache: a REUSE frame is
        the previous frame's labels moved by the motion (what the feature cache would give,
        without its bookkeeping: 2.5 instead of 8.7 ms at 480x360), a computed frame runs
        without a cache (all FULL: the plain network)."""
        return (self.policy.config.reuse_granularity == "frame"
                and self.blocks.model.fusion is None)

    def _follow_granularity(self) -> None:
        """Frame-granular REUSE with LOW fusion runs all-FULL frames densely in the block
        machinery (their cache: the output only)."""
        self.blocks.model.dense_keyframes = self.policy.config.reuse_granularity == "frame"
        self.blocks.confidence = self.complexity.needs_confidence  # one reduction per stream

    def process(self, image_rgb: np.ndarray) -> FrameResult:
        """Segment one HxWx3 uint8 RGB frame of the stream."""
        t0 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        grid = self.blocks.grid(h, w)
        small = self.motion.prepare(image_rgb)
        prev = self._previous
        motion = distortion = None
        light = self._moves_labels_only()
        pipelined = light and self.policy.config.pipelined
        if self.background.busy and not pipelined:  # turned off live
            self.background.cancel()
            self._chain = None
        if (prev is not None and prev.labels.shape == (h, w)
                and (light or self._cache is not None)
                and self._previous_small is not None
                and self._previous_small.shape == small.shape
                and (pipelined or not self.policy.next_is_all_full())):
            motion = self.motion.estimate(small, self._previous_small)
            if not pipelined:  # pipelined: measured only when the second thread is free
                distortion = block_distortion(small, self._previous_small, motion, grid.shape,
                                              grid.block_size)
        else:
            prev = None
            self._cache = None
        t1 = time.perf_counter()

        def scores() -> np.ndarray:
            return self.complexity.scores(image_rgb, grid.shape, prev.labels if prev else None,
                                          prev.confidence if prev else None)
        if pipelined and prev is not None and motion is not None:
            result = self._pipelined(image_rgb, small, grid, prev, motion, scores)
            self._previous_small = small
            self._previous = result
            result.timings_ms = {"motion": (t1 - t0) * 1e3, **result.timings_ms}
            return result
        self.background.cancel()  # a new stream, or a frame the network must label now
        self._chain = None
        paths = self.policy.decide(distortion, scores, grid.shape)
        t2 = time.perf_counter()
        if light:
            result = self._frame_granular(image_rgb, paths, grid, prev, motion)
        else:
            result = self._block_frame(image_rgb, paths, motion, scores)
        if (self.policy.measures_drift and prev is not None and motion is not None
                and not bool((paths == REUSE).all())):
            self._observe_drift(result, prev, motion)
        t3 = time.perf_counter()
        self._previous_small = small
        self._previous = result
        result.timings_ms = {"motion": (t1 - t0) * 1e3, "policy": (t2 - t1) * 1e3,
                             **result.timings_ms}
        self.policy.observe((t3 - t0) * 1e3)
        return result

    def _pipelined(self, image_rgb: np.ndarray, small: np.ndarray, grid: BlockGrid,
                   prev: FrameResult, motion: MotionField,
                   scores: Callable[[], np.ndarray]) -> FrameResult:
        """The newest labels moved to this frame: the previous frame's, or those the second
        thread just finished, carried over every frame since. Then, if that thread is free
        and the policy asks for a computed frame, it starts on this one."""
        t0 = time.perf_counter()
        h, w = prev.labels.shape
        positions = flow_positions(motion, h, w)
        if self._chain is not None:
            self._chain.append(positions)
        try:
            done = self.background.take()
        except Exception:
            self._chain = None  # that frame's labels will not come: go on moving the last
            raise
        if done is not None and self._chain is not None:
            base, chain = done, self._chain
            self._chain = None
        else:
            base, chain = prev, SourceChain()
            chain.append(positions)
        result = carried_result(base, chain, grid.pixel_map(np.full(grid.shape, REUSE)))
        t1 = time.perf_counter()
        if not self.background.busy:
            assert self._previous_small is not None
            distortion = block_distortion(small, self._previous_small, motion, grid.shape,
                                          grid.block_size)
            paths = self.policy.decide(distortion, scores, grid.shape)
            if not bool((paths == REUSE).all()):
                self.blocks.confidence = False  # whole frames: no blocks to rank by it
                # the caller may reuse its buffer; the network reads the frame for a while.
                # The policy's paths: all FULL with full_fraction 1, all LOW with 0.
                self.background.submit(image_rgb.copy(), paths)
                self._chain = SourceChain()
        result.timings_ms = {"network": (t1 - t0) * 1e3,
                             "policy": (time.perf_counter() - t1) * 1e3}
        return result

    def segment_whole(self, image_rgb: np.ndarray, paths: np.ndarray | None = None
                      ) -> FrameResult:
        """The network on the whole frame, each block on its path in ``paths`` (default:
        all FULL): the pipelined mode's second thread."""
        if paths is None:
            paths = np.full(self.blocks.grid(*image_rgb.shape[:2]).shape, int(BlockPath.FULL))
        result = self.blocks.process(image_rgb, paths)
        result.label_age = 0
        return result

    def _frame_granular(self, image_rgb: np.ndarray, paths: np.ndarray, grid: BlockGrid,
                        prev: FrameResult | None, motion: MotionField | None) -> FrameResult:
        """An all-REUSE frame moves ``prev``'s maps; any other runs without a cache."""
        # Only a ranking of computed blocks reads the confidence, so it is computed only
        # while some may run LOW (a frame after a change ranks without it).
        self.blocks.confidence = self.complexity.needs_confidence and (
            self.policy.effective[1] < 1.0)
        if prev is not None and motion is not None and bool((paths == BlockPath.REUSE).all()):
            return moved_result(prev, motion, grid.pixel_map(paths))
        result = self.blocks.process(image_rgb, paths)
        result.label_age = 0
        result.cache_bytes = label_maps_bytes(result)
        return result

    def _observe_drift(self, result: FrameResult, prev: FrameResult, motion: MotionField
                       ) -> None:
        """A computed frame's drift for the policy: where ``prev``'s labels moved to it, as
        a REUSE frame would show them, differ from the network's."""
        t0 = time.perf_counter()
        h, w = prev.labels.shape
        sources = motion_sources(motion, h, w, 1.0, (h, w), DRIFT_SAMPLE_STEP)
        shown = result.labels[::DRIFT_SAMPLE_STEP, ::DRIFT_SAMPLE_STEP]
        self.policy.observe_drift(float(np.mean(prev.labels.ravel().take(sources) != shown)))
        result.timings_ms["drift"] = (time.perf_counter() - t0) * 1e3

    def _block_frame(self, image_rgb: np.ndarray, paths: np.ndarray,
                     motion: MotionField | None, scores: Callable[[], np.ndarray]
                     ) -> FrameResult:
        """The block engine on the frame with the feature cache, which it then replaces."""
        try:
            result = self.blocks.process(image_rgb, paths, (self._cache, motion))
        except CacheMissError as exc:  # the network took another route: start afresh
            self.cache_misses += 1
            log.warning("temporal cache unusable (%s); running a keyframe", exc)
            self.policy.reset()
            paths = self.policy.decide(None, scores)
            result = self.blocks.process(image_rgb, paths, (None, None))
        self._cache = self.blocks.last_cache
        result.cache_bytes = self._cache.nbytes() if self._cache is not None else 0
        return result


def moved_result(previous: FrameResult, motion: MotionField, path_map: np.ndarray
                 ) -> FrameResult:
    """An all-REUSE frame: ``previous``'s labels (and confidence) moved by ``motion``, each
    pixel from the nearest one it came from, as the feature cache moves its pixels (up to
    :func:`~seg_accel_ros.engine.motion.move_nearest`'s float32 rounding)."""
    t0 = time.perf_counter()
    positions = flow_positions(motion, *previous.labels.shape)  # once for both maps
    labels = remap_nearest(previous.labels, positions)
    confidence = (remap_nearest(previous.confidence, positions)
                  if previous.confidence is not None else None)
    return reused_result(labels, confidence, path_map, (previous.label_age or 0) + 1, t0)


def carried_result(base: FrameResult, chain: SourceChain, path_map: np.ndarray
                   ) -> FrameResult:
    """An all-REUSE frame: ``base``'s labels (and confidence) carried over ``chain``'s
    frames."""
    t0 = time.perf_counter()
    labels = chain.moved(base.labels)
    confidence = chain.moved(base.confidence) if base.confidence is not None else None
    return reused_result(labels, confidence, path_map, (base.label_age or 0) + chain.frames, t0)


def reused_result(labels: np.ndarray, confidence: np.ndarray | None, path_map: np.ndarray,
                  label_age: int, started: float) -> FrameResult:
    """An all-REUSE frame of moved maps (begun at ``started``); what it keeps for the next
    frame is these maps."""
    result = FrameResult(labels=labels, path_map=path_map, confidence=confidence,
                         timings_ms={"network": (time.perf_counter() - started) * 1e3},
                         path_mix={"full": 0.0, "low": 0.0, "reuse": 1.0},
                         label_age=label_age)
    result.cache_bytes = label_maps_bytes(result)
    return result


def label_maps_bytes(result: FrameResult) -> int:
    """What a frame-granular stream keeps of ``result``: its labels and confidence."""
    return result.labels.nbytes + (
        result.confidence.nbytes if result.confidence is not None else 0)
