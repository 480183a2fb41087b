"""Live evaluation: the frames go through the real seg_accel_node over DDS at their recorded
timing, and a subscriber in this process measures what a user's stack would see.

The frames (the first ``max_frames`` of any source, resized as asked) are written to a
temporary rosbag2 as rgb8 Images with their stamps; a bag played at its own size keeps its
recorded messages byte for byte (a CompressedImage topic stays compressed, and the node
subscribes to ``image/compressed``). ``seg_accel_replay`` plays them at the recorded rate into
the node, which runs in its own process on a private DDS domain
(:class:`~seg_accel_ros.tools.live.LivePipeline`). This process subscribes to the input and to
the node's ``~/labels`` and ``~/path_map``:

* latency of a frame = labels received - input received, both in this process's clock (so
  recorded stamps from the past do not matter);
* a frame without labels was dropped by the node (latest frame wins) or lost;
* accuracy and fidelity are scored on the frames that got labels, against the ground truth and
  against the dense network run here, offline, on the same frames.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from seg_accel_ros import bags, image_codec
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.evaluation.offline import Evaluation, FrameSink, RunResult, model_info
from seg_accel_ros.evaluation.scoring import FrameOutcome, RunScorer
from seg_accel_ros.evaluation.sources import EvalSource
from seg_accel_ros.models.registry import get_spec
from seg_accel_ros.ros.diagnostics import TEMPORAL_VALUES
from seg_accel_ros.ros.image_cdr import header_stamp_ns
from seg_accel_ros.ros.parameters import SPECS
from seg_accel_ros.tools.live import LivePipeline
from seg_accel_ros.tools.node_bench import diagnostic_values

INPUT_TOPIC = "/image"
NODE = "seg_accel_node"
NODE_DIAGNOSTICS = ("frames_received", "frames_processed", "frames_dropped", "frames_lost",
                    "frames_rejected", "frames_failed", "inference_p50_ms", "inference_p95_ms",
                    "overhead_p50_ms", "overhead_p95_ms", "wait_p95_ms", "wait_max_ms",
                    "stream_resets")


@dataclass
class Received:
    """What the watching subscriber got, keyed by header stamp (ns)."""

    input_at: dict[int, float] = field(default_factory=dict)  # monotonic receipt time
    labels_at: dict[int, float] = field(default_factory=dict)
    labels: dict[int, np.ndarray] = field(default_factory=dict)
    path_maps: dict[int, np.ndarray] = field(default_factory=dict)
    diagnostics: list[dict[str, str]] = field(default_factory=list)

    def latency_ms(self, stamp: int) -> float | None:
        """Input receipt to labels receipt of one frame."""
        if stamp in self.input_at and stamp in self.labels_at:
            return (self.labels_at[stamp] - self.input_at[stamp]) * 1e3
        return None


def node_params(config: EngineConfig, size: tuple[int, int],
                transport: str = "raw") -> dict[str, object]:
    """The node parameters that reproduce ``config`` (every field the node declares)."""
    params: dict[str, object] = {}
    for key, value in asdict(config).items():
        if key in SPECS:
            params[key] = f'"{value}"' if isinstance(value, str) else value
    params["warmup_size"] = f"[{size[1]}, {size[0]}]"
    params["input_transport"] = f'"{transport}"'
    return params


@dataclass(frozen=True)
class ReplayInput:
    """The bag the camera replays: its one topic, message type and the frames' stamps."""

    path: Path
    topic: str
    msgtype: str
    stamps: list[int]

    @property
    def transport(self) -> str:
        """The node's ``input_transport`` for this message type."""
        return "compressed" if self.msgtype == bags.COMPRESSED_TYPE else "raw"


def write_replay_bag(source: EvalSource, path: Path, max_frames: int | None) -> ReplayInput:
    """The first ``max_frames`` frames as a bag with one topic, in their recorded order.

    A source bag at its own size is copied message by message (the recorded bytes, compressed
    or not); any other source is written as rgb8 Images with the frames' stamps.
    """
    if source.bag_path is not None:
        return _copy_bag_messages(source, path, max_frames)
    stamps = []
    with bags.BagWriter(path, "mcap") as bag:
        for frame in source.frames(max_frames):
            bag.write_frame(INPUT_TOPIC, frame.time_ns, frame.rgb, "rgb8",
                            frame_id=source.frame_id, stamp_ns=frame.stamp_ns)
            stamps.append(frame.stamp_ns)
    if not stamps:
        raise ValueError(f"{source.description} gave no frames")
    return ReplayInput(path, INPUT_TOPIC, bags.IMAGE_TYPE, stamps)


def _copy_bag_messages(source: EvalSource, path: Path, max_frames: int | None) -> ReplayInput:
    topic = bags.topic_for_encoding(INPUT_TOPIC, "jpeg" if source.msgtype ==
                                    bags.COMPRESSED_TYPE else "rgb8")
    stamps = []
    with bags.BagReader(source.bag_path) as reader, bags.BagWriter(path, "mcap") as bag:
        raw_messages = itertools.islice(reader.raw_messages([source.topic]), max_frames)
        for raw in raw_messages:
            stamps.append(header_stamp_ns(raw.data))
            bag.write_raw(topic, raw.time_ns, raw.data, raw.msgtype)
    if not stamps:
        raise ValueError(f"{source.description} gave no frames")
    return ReplayInput(path, topic, source.msgtype, stamps)


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def watch_node(replay: ReplayInput, params: dict[str, object], rate: float,
               log_dir: Path, say: Callable[[str], None]) -> Received:
    """Run the node and the replay; collect what a subscriber receives."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    got = Received()
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

    def on_input(msg: Image) -> None:
        got.input_at[_stamp_ns(msg)] = time.monotonic()

    def on_labels(msg: Image) -> None:
        stamp = _stamp_ns(msg)
        got.labels_at[stamp] = time.monotonic()
        got.labels[stamp] = image_codec.decode_image(msg, copy=True)

    def on_path_map(msg: Image) -> None:
        got.path_maps[_stamp_ns(msg)] = image_codec.decode_image(msg, copy=True)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        values = diagnostic_values(msg, NODE)
        if values:
            got.diagnostics.append(values)

    pipeline = LivePipeline(params, log_dir=log_dir)
    rclpy.init()
    probe = rclpy.create_node("seg_accel_eval")
    input_type = CompressedImage if replay.transport == "compressed" else Image
    probe.create_subscription(input_type, replay.topic, on_input, reliable)
    probe.create_subscription(Image, f"/{NODE}/labels", on_labels, reliable)
    probe.create_subscription(Image, f"/{NODE}/path_map", on_path_map, reliable)
    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    try:
        with pipeline:
            model, mode = (str(params.get(k, "")).strip('"') for k in ("model", "mode"))
            say(f"starting {NODE} ({model}, {mode}) ...")
            pipeline.wait_until_active(probe, NODE)
            say(f"replaying {len(replay.stamps)} frames ({replay.msgtype}) at x{rate:g} "
                "the recorded rate")
            pipeline.start_replay(replay.path, replay.topic, replay.topic, rate, subscribers=2)
            while pipeline.camera_running():
                rclpy.spin_once(probe, timeout_sec=0.05)
            _settle(probe, got, set(replay.stamps))
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    return got


def _settle(probe: Any, got: Received, stamps: set[int], cap_s: float = 60.0) -> None:
    """Spin until every frame has labels, or nothing arrived for a while (and one more
    diagnostics period went by)."""
    import rclpy

    start = last_change = time.monotonic()
    seen = len(got.labels)
    latencies = [v for v in (got.latency_ms(s) for s in got.labels) if v is not None]
    quiet_s = max(3.0, 3e-3 * statistics.median(latencies)) if latencies else 3.0
    while time.monotonic() - start < cap_s:
        rclpy.spin_once(probe, timeout_sec=0.05)
        if len(got.labels) != seen:
            seen, last_change = len(got.labels), time.monotonic()
        if (stamps <= got.labels.keys() and time.monotonic() - last_change > 1.5) or (
                time.monotonic() - last_change > quiet_s):
            return


def _number(value: str | None) -> int | float | str | None:
    """A diagnostic value as a number where it is one (counts as int)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def run_live(source: EvalSource, config: EngineConfig, *, max_frames: int | None = None,
             reference: bool = True, rate: float = 1.0, sinks: Sequence[FrameSink] = (),
             log_dir: str | Path | None = None,
             say: Callable[[str], None] = print) -> Evaluation:
    """Evaluate ``config`` through the node; the dense reference runs here afterwards."""
    first = next(iter(source.frames(1)), None)
    if first is None:
        raise ValueError(f"{source.description} gave no frames")
    size = (first.rgb.shape[1], first.rgb.shape[0])
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="seg_accel_eval_"))
    with tempfile.TemporaryDirectory(prefix="seg_accel_eval_") as tmp:
        bag = Path(tmp) / "input"
        replay = write_replay_bag(source, bag, max_frames)
        got = watch_node(replay, node_params(config, size, replay.transport), rate, logs, say)
    stamps = replay.stamps
    say(f"received labels for {len(got.labels)} of {len(stamps)} frames; scoring")
    last = got.diagnostics[-1] if got.diagnostics else {}
    spec = get_spec(config.model)
    dense = build_engine(replace(config, mode="dense")) if reference else None
    node_model = {"model": last.get("model", config.model),
                  "weights": last.get("weights", config.weights),
                  "device": last.get("device", config.device)}
    run = RunResult(config.mode, config, RunScorer(source.class_names, source.ignore_index,
                                                   spec.num_classes), node_model)
    ref = (RunResult("dense", replace(config, mode="dense"),
                     RunScorer(source.class_names, source.ignore_index, spec.num_classes),
                     model_info(dense)) if dense is not None else None)
    for frame in source.frames(max_frames):
        labels = got.labels.get(frame.stamp_ns)
        if labels is None or labels.shape != frame.rgb.shape[:2]:
            run.scorer.add_missing(frame)
            continue
        outcome = FrameOutcome(labels, got.path_maps.get(frame.stamp_ns),
                               latency_ms=got.latency_ms(frame.stamp_ns))
        dense_labels = None
        if dense is not None and ref is not None:
            dense_labels = dense.process(frame.rgb).labels
            ref.scorer.add(frame, FrameOutcome(dense_labels))
        run.scorer.add(frame, outcome, dense_labels)
        for sink in sinks:
            sink.add(frame, outcome)
    published = len(stamps)
    received = run.scorer.frames
    live = {
        "frames_published": published,
        "input_msgtype": replay.msgtype,
        "frames_with_labels": received,
        "frames_without_labels": published - received,
        "drop_share_percent": 100.0 * (published - received) / published,
        "replay_rate_factor": rate,
        **{f"node_{k}": _number(last.get(k)) for k in NODE_DIAGNOSTICS},
        **{f"node_{k}": _number(last[k]) for k in TEMPORAL_VALUES if k in last},
        "logs": str(logs),
    }
    resets = _number(last.get("stream_resets"))
    return Evaluation(source, [run], ref, kind="live", live=live,
                      class_names=source.class_names, palette=tuple(spec.palette),
                      stream_resets=int(resets) if isinstance(resets, int | float) else 0)
