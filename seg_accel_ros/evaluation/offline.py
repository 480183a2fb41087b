"""Offline evaluation: every frame through each engine configuration, and through the dense
reference, one frame at a time, in one run.

Running the dense network and every configuration on the same frame, one after the other,
makes the speed ratio robust to the machine's load changing during the run (the project's
measurement rule: accelerated vs dense FPS measured in one run on the same frames, after
warm-up, median over frames, batch 1). Nothing depends on the wall clock but the times: labels,
path maps and scores are deterministic. Temporal state is reset where the stream breaks
(new size, stamps going back or jumping more than a second), exactly as the node does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.engine.stream import StreamMonitor
from seg_accel_ros.evaluation.scoring import FrameOutcome, RunScorer
from seg_accel_ros.evaluation.sources import EvalFrame, EvalSource


class FrameSink(Protocol):
    """Something that consumes the primary run's outputs (video, labels bag, samples)."""

    def add(self, frame: EvalFrame, outcome: FrameOutcome) -> None: ...

    def close(self) -> None: ...


@dataclass
class RunResult:
    """One configuration's scores and what produced them."""

    name: str  # e.g. "blocks" or "full_fraction=0.25"
    config: EngineConfig
    scorer: RunScorer
    model: dict[str, str] = field(default_factory=dict)  # name, weights, device


@dataclass
class Evaluation:
    """Everything one evaluation run measured."""

    source: EvalSource
    runs: list[RunResult]
    reference: RunResult | None  # the dense network on the same frames
    kind: str = "offline"  # or "live"
    live: dict[str, Any] = field(default_factory=dict)  # live-only figures
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    stream_resets: int = 0
    clock: str = "wall"  # what the times measure: wall or cpu (process CPU time)


def model_info(engine: Any) -> dict[str, str]:
    """Name, weights and device of an engine's model, for reports."""
    loaded = getattr(engine, "model", None)
    spec = getattr(loaded, "spec", None)
    return {"model": getattr(spec, "name", ""), "weights": str(getattr(loaded, "weights", "")),
            "device": str(getattr(loaded, "device", ""))}


def timed(engine: Any, rgb, clock: Callable[[], float] = time.perf_counter) -> FrameOutcome:
    """Run one frame; the engine's time on ``clock`` (wall by default) in the outcome."""
    t0 = clock()
    result = engine.process(rgb)
    elapsed = (clock() - t0) * 1e3
    return FrameOutcome(result.labels, result.path_map, dict(result.path_mix), time_ms=elapsed,
                        cache_mb=result.cache_mb)


def new_scorer(source: EvalSource, engine: Any) -> RunScorer:
    """A scorer for ``source``'s classes and the engine model's output classes."""
    spec = engine.model.spec
    return RunScorer(source.class_names, source.ignore_index, spec.num_classes)


def run_offline(source: EvalSource, configs: Sequence[EngineConfig],
                names: Sequence[str] | None = None, *, reference: bool = True,
                max_frames: int | None = None, warmup: int = 2,
                sinks: Sequence[FrameSink] = (),
                progress: Callable[[int, int | None], None] | None = None,
                engine_factory: Callable[[EngineConfig], Any] = build_engine,
                clock: Callable[[], float] = time.perf_counter) -> Evaluation:
    """Evaluate ``configs`` (the first is the primary run, whose outputs go to ``sinks``).

    With ``reference`` the dense network of the first configuration's model runs on every frame
    too, for the speed ratio and the fidelity of every configuration. ``engine_factory`` builds
    the engines (tests pass fakes); ``clock`` times them (``time.process_time``: CPU time of
    this process, the steadiest figure on a shared machine, with one thread).
    """
    if not configs:
        raise ValueError("nothing to evaluate: no engine configuration")
    names = list(names) if names is not None else [c.mode for c in configs]
    engines = [engine_factory(c) for c in configs]
    dense = engine_factory(replace(configs[0], mode="dense")) if reference else None
    runs = [RunResult(n, c, new_scorer(source, e), model_info(e))
            for n, c, e in zip(names, configs, engines, strict=True)]
    ref_run = (RunResult("dense", replace(configs[0], mode="dense"), new_scorer(source, dense),
                         model_info(dense)) if dense is not None else None)
    spec = engines[0].model.spec
    evaluation = Evaluation(source, runs, ref_run, class_names=source.class_names,
                            palette=tuple(spec.palette),
                            clock="cpu" if clock is time.process_time else "wall")
    monitor = StreamMonitor()
    total = source.expected_frames(max_frames)
    everyone = [e for e in (dense, *engines) if e is not None]
    done = 0
    for frame in source.frames(max_frames):
        if done == 0:
            _warm_up(everyone, frame, warmup)
        reason = monitor.check(frame.stamp_ns / 1e9, frame.rgb.shape)
        if reason:
            evaluation.stream_resets += 1
            for engine in everyone:
                engine.reset()
        dense_out = timed(dense, frame.rgb, clock) if dense is not None else None
        if dense_out is not None and ref_run is not None:
            ref_run.scorer.add(frame, dense_out, stream_reset=bool(reason))
        for run, engine in zip(runs, engines, strict=True):
            out = timed(engine, frame.rgb, clock)
            run.scorer.add(frame, out, dense_out.labels if dense_out else None,
                           dense_out.time_ms if dense_out else None, stream_reset=bool(reason))
            if run is runs[0]:
                for sink in sinks:
                    sink.add(frame, out)
        done += 1
        if progress is not None:
            progress(done, total)
    if done == 0:
        raise ValueError(f"{source.description} gave no frames")
    return evaluation


def _warm_up(engines: Sequence[Any], frame: EvalFrame, calls: int) -> None:
    """Untimed first calls (allocation, kernel choice), then a fresh temporal state."""
    for engine in engines:
        for _ in range(calls):
            engine.process(frame.rgb)
        engine.reset()
