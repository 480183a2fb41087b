"""``seg_accel_node``: the lifecycle node that segments camera images.

Thin ROS glue: parameters, QoS, topics and diagnostics. Frames go from the subscription
callback into a one-slot mailbox (latest frame wins); a worker thread decodes, runs the engine
and publishes, so the executor is never blocked by inference.
"""

from __future__ import annotations

import faulthandler
import signal
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CompressedImage, Image

from seg_accel_ros import image_codec
from seg_accel_ros.engine.config import EngineConfig, speed_note
from seg_accel_ros.engine.factory import Engine, EngineError, build_engine, resolve_device
from seg_accel_ros.engine.stream import StreamMonitor
from seg_accel_ros.engine.temporal import TemporalEngine
from seg_accel_ros.models.registry import ModelLoadError
from seg_accel_ros.ros import image_cdr
from seg_accel_ros.ros.diagnostics import Findings, diagnostic_status
from seg_accel_ros.ros.mailbox import LatestMailbox
from seg_accel_ros.ros.parameters import (
    PARAMS,
    SPECS,
    TEMPORAL_RUNTIME,
    NodeConfig,
    ParamSpec,
)
from seg_accel_ros.ros.statistics import NodeStatistics, ReasonThrottle, SequenceGaps
from seg_accel_ros.runtime import freeze_long_lived_objects, thaw_objects
from seg_accel_ros.visualization import colorize, palette_lut

OUTPUT_QOS = QoSProfile(depth=2, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE)


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.min_value is not None and spec.max_value is not None:
        if isinstance(spec.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)]
        elif isinstance(spec.default, int) and not isinstance(spec.default, bool):
            desc.integer_range = [IntegerRange(
                from_value=int(spec.min_value), to_value=int(spec.max_value), step=0)]
    return desc


InputMessage = Image | CompressedImage | bytes  # bytes: serialized (raw subscription)


def _stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class SegAccelNode(LifecycleNode):
    """Subscribes to ``image`` (or ``image/compressed``), publishes labels and diagnostics."""

    def __init__(self, node_name: str = "seg_accel_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        for spec in PARAMS:
            descriptor = _descriptor(spec)
            if isinstance(spec.default, list) and not spec.default:
                # rclpy would type an empty list as a byte array; the validator checks types
                descriptor.dynamic_typing = True
            self.declare_parameter(spec.name, spec.default, descriptor)
        self.declare_parameter("autostart", False, ParameterDescriptor(
            description="Configure and activate at start-up (without a lifecycle manager).",
            read_only=True))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._config: NodeConfig | None = None
        self._engine: Engine | None = None
        self._mailbox: LatestMailbox = LatestMailbox()
        self._worker: threading.Thread | None = None
        self._running = threading.Event()
        self._subscription = None
        self._outputs: dict[str, object] = {}
        self._diag_pub = None
        self._diag_timer = None
        self._stats = NodeStatistics()
        self._gaps = SequenceGaps()
        self._log_throttle = ReasonThrottle()
        self._stream = StreamMonitor()
        self._stream_resets = 0
        self._failed_at_last_report = 0
        self._last_failure = ""
        self._failing = False  # the last frame failed; cleared by the next one that succeeds
        self._cache_mb: float | None = None  # the temporal engine's feature cache, last frame
        self._palette = palette_lut([])
        self._cdr = image_cdr.agrees_with_rclpy()  # images in and out as serialized bytes

    # -- parameters -------------------------------------------------------------------------
    def _param_values(self) -> dict[str, object]:
        values = {}
        for spec in PARAMS:
            value = self.get_parameter(spec.name).value
            values[spec.name] = list(value) if isinstance(value, list | tuple) or type(
                value).__name__ == "array" else value
        return values

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            spec = SPECS.get(param.name)
            if spec is None:
                continue
            value = param.value
            if param.type_ == Parameter.Type.NOT_SET:
                return SetParametersResult(successful=False,
                                           reason=f"{param.name} cannot be unset")
            if isinstance(value, tuple | np.ndarray) or type(value).__name__ == "array":
                value = list(value)
            reason = spec.check(value) or self._unsupported(param.name, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        if self._config is not None:
            self._apply_runtime(params)
        return SetParametersResult(successful=True)

    def _unsupported(self, name: str, value: object) -> str:
        """Why the configured engine cannot take ``value`` live ('' when it can)."""
        engine = self._engine
        if not isinstance(engine, TemporalEngine) or name not in TEMPORAL_RUNTIME:
            return ""
        if name == "low_fusion" and value and engine.fusion is None:
            return (f"low_fusion: no trained LOW-block fusion for "
                    f"{engine.model.spec.name} (LOW blocks stay plain)")
        return engine.check_change(**{name: value})

    def _apply_runtime(self, params: list[Parameter]) -> None:
        """Runtime-tunable parameters take effect on the next frame."""
        for param in params:
            if param.name == "palette":
                self._palette = self._build_palette(list(param.value or []))
            elif param.name == "full_fraction" and hasattr(self._engine, "set_full_fraction"):
                self._engine.set_full_fraction(float(param.value))
            elif param.name in TEMPORAL_RUNTIME and hasattr(self._engine, "configure"):
                self._engine.configure(**{param.name: param.value})
            elif param.name == "stats_window":
                self._stats.window = int(param.value)
                self._stats.reset_rolling()
        updates = {p.name: (list(p.value) if p.name == "palette" else p.value)
                   for p in params if p.name in SPECS}
        values = {**self._param_values(), **updates}
        self._config = NodeConfig.from_values(values)

    def _build_palette(self, flat: list[int]) -> np.ndarray:
        return palette_lut(np.asarray(flat, np.uint8).reshape(-1, 3) if flat
                           else self._engine.model.spec.palette)

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            config = NodeConfig.from_values(self._param_values())
        except ValueError as exc:
            self.get_logger().error(f"configure failed: bad parameters: {exc}")
            return TransitionCallbackReturn.FAILURE
        device = config.device
        try:
            resolve_device(device)
        except EngineError as exc:
            if not config.allow_cpu_fallback:
                self.get_logger().error(f"configure failed: {exc} (allow_cpu_fallback: true "
                                        f"runs on the CPU instead)")
                return TransitionCallbackReturn.FAILURE
            self.get_logger().warning(f"{exc}; allow_cpu_fallback is set: running on the CPU")
            device = "cpu"
        try:
            engine_config = EngineConfig(
                model=config.model, weights=config.weights, device=device, mode=config.mode,
                half_precision=config.half_precision, num_threads=config.num_threads,
                block_size=config.block_size, block_policy=config.block_policy,
                full_fraction=config.full_fraction,
                **{name: getattr(config, name) for name in TEMPORAL_RUNTIME})
            engine = build_engine(engine_config)
            self._warm_up(engine, config)
        except (ModelLoadError, EngineError, ValueError) as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # anything else from torch: still a clean FAILURE
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._config, self._engine = config, engine
        self._palette = self._build_palette(list(config.palette))
        self._stats = NodeStatistics(window=config.stats_window)
        self._failed_at_last_report = 0
        self._rejected_at_last_report = 0
        self._failing = False
        self._outputs = {
            name: self.create_lifecycle_publisher(Image, f"~/{name}", OUTPUT_QOS)
            for name in ("labels", "labels_color", "path_map")
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # On the steady clock: with use_sim_time a paused bag (or no /clock yet) would
        # otherwise stop the health reports, and a fast replay would speed them up.
        self._diag_timer = self.create_timer(config.diagnostics_period,
                                             self._publish_diagnostics,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        frozen = freeze_long_lived_objects()  # no 100 ms collection stalls while streaming
        self.get_logger().debug(f"{frozen} long-lived objects exempt from garbage collection")
        self.get_logger().info(
            f"configured: model {config.model} ({engine.model.weights}) on {device}")
        if not engine.model.trained:
            self.get_logger().warning(
                f"model {config.model} has no trained weights (packaged ones or a 'weights' "
                f"file): it runs untrained and its labels mean nothing")
        note = speed_note(engine_config)
        if note:
            self.get_logger().warning(note)
        return TransitionCallbackReturn.SUCCESS

    def _warm_up(self, engine: Engine, config: NodeConfig) -> None:
        h, w = config.warmup_size
        frame = np.zeros((h, w, 3), np.uint8)
        for _ in range(config.warmup_frames):
            engine.process(frame)
        engine.reset()

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self._config is not None
        qos = QoSProfile(
            depth=self._config.qos_depth, history=HistoryPolicy.KEEP_LAST,
            reliability=(ReliabilityPolicy.BEST_EFFORT
                         if self._config.qos_reliability == "best_effort"
                         else ReliabilityPolicy.RELIABLE))
        # Raw subscriptions hand over the serialized bytes: frames that the mailbox replaces
        # are never deserialized, and the worker reads the pixels in place.
        if self._config.input_transport == "compressed":
            self._subscription = self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, qos, raw=self._cdr)
        else:
            self._subscription = self.create_subscription(Image, "image", self._on_image, qos,
                                                          raw=self._cdr)
        self._start_worker()
        self._stats.on_listening(time.monotonic())
        self.get_logger().info(f"active: listening on {self._subscription.topic_name}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._reset_temporal_state()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_input(self) -> None:
        """Finish the frame in flight, then unsubscribe."""
        self._stop_worker()
        self._stats.on_listening(None)
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None

    def _release(self) -> None:
        for pub in self._outputs.values():
            self.destroy_publisher(pub)
        self._outputs = {}
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        if self._engine is not None:
            self._engine.reset()  # a pipelined engine's second thread finishes its frame
            thaw_objects()  # the released network's reference cycles become collectable
        self._engine = None
        self._config = None
        self._cache_mb = None

    def _reset_temporal_state(self) -> None:
        if self._mailbox.clear():
            self._stats.dropped += 1
        self._stream.reset()
        if self._engine is not None:
            self._engine.reset()
        if self._cache_mb is not None:
            self._cache_mb = 0.0

    # -- frames -----------------------------------------------------------------------------
    def _on_image(self, msg: InputMessage, info: MessageInfo) -> None:
        gid = info.get("publisher_gid") or {}
        lost = self._gaps.observe(bytes(gid.get("data", b"")),
                                  info.get("publication_sequence_number"))
        replaced = self._mailbox.put((msg, time.monotonic()))
        self._stats.on_received(time.monotonic(), replaced, lost)

    def _start_worker(self) -> None:
        self._mailbox.open()
        self._running.set()
        self._worker = threading.Thread(target=self._work, name="seg_accel_inference",
                                        daemon=True)
        self._worker.start()

    def _stop_worker(self) -> None:
        self._running.clear()
        self._mailbox.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _work(self) -> None:
        while self._running.is_set():
            item = self._mailbox.take(timeout=0.1)
            if item is None or not self._running.is_set():
                continue
            try:
                self._process(*item)
            except Exception as exc:  # decode, stream check or publishing: keep the worker alive
                self._on_failure("processing failed", f"{type(exc).__name__}: {exc}")

    def _on_failure(self, what: str, reason: str) -> None:
        """Count a frame that could not be segmented; log each kind of failure (throttled)."""
        self._last_failure = f"{what}: {reason}"  # before the count the diagnostics poll
        self._failing = True
        now = time.monotonic()
        self._stats.on_failed(reason, now)
        if self._log_throttle.should_log(reason, now):
            self.get_logger().error(f"{what}: {reason}")
        if self._engine is not None:
            self._engine.reset()

    def _decode(self, msg: InputMessage) -> tuple[object, np.ndarray]:
        """(header, HxWx3 RGB) of an input message, serialized or not; ImageCodecError."""
        max_pixels = self._config.max_pixels if self._config else None
        compressed = self._config is not None and self._config.input_transport == "compressed"
        if isinstance(msg, bytes):
            msg = (image_cdr.parse_compressed_image(msg) if compressed
                   else image_cdr.parse_image(msg))
        if compressed:
            return msg.header, image_codec.compressed_to_rgb8(msg, max_pixels=max_pixels)
        return msg.header, image_codec.to_rgb8(msg, max_pixels=max_pixels)

    def _process(self, msg: InputMessage, received: float) -> None:
        engine, config = self._engine, self._config
        if engine is None or config is None:
            return
        self._stats.on_started(time.monotonic() - received)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            header, frame = self._decode(msg)
        except image_codec.ImageCodecError as exc:
            now = time.monotonic()
            self._stats.on_rejected(str(exc), now)
            if self._log_throttle.should_log(str(exc), now):
                self.get_logger().warning(f"frame rejected: {exc}")
            return
        reason = self._stream.check(_stamp_seconds(header.stamp), frame.shape)
        if reason:
            self._stream_resets += 1
            engine.reset()
            self.get_logger().info(f"temporal state reset: {reason}",
                                   throttle_duration_sec=1.0)
        t1, c1 = time.perf_counter(), time.thread_time()
        try:
            result = engine.process(frame)
        except Exception as exc:  # the node must survive any inference failure
            self._on_failure("inference failed", f"{type(exc).__name__}: {exc}")
            return
        t2, c2 = time.perf_counter(), time.thread_time()
        if result.cache_mb is not None:
            self._cache_mb = result.cache_mb
        self._publish_outputs(header, frame, result.labels, result.path_map, config)
        t3, c3 = time.perf_counter(), time.thread_time()
        now_ns = self.get_clock().now().nanoseconds
        # 0: simulated time (use_sim_time) before the first /clock message; no latency yet
        latency_ms = ((now_ns * 1e-9 - _stamp_seconds(header.stamp)) * 1e3 if now_ns
                      else float("nan"))
        self._failing = False
        self._stats.on_processed(time.monotonic(), latency_ms, (t2 - t1) * 1e3,
                                 ((t1 - t0) + (t3 - t2)) * 1e3, result.path_mix,
                                 ((c1 - c0) + (c3 - c2)) * 1e3, result.label_age)

    def _publish_outputs(self, header, frame: np.ndarray, labels: np.ndarray,
                         path_map: np.ndarray, config: NodeConfig) -> None:
        """Publish only the outputs somebody listens to, with the input's header.

        All are made before the first is published: the middleware's sending thread then
        runs after the worker's output work instead of competing with it for the cores.
        """
        pubs = self._outputs
        ready = []
        if pubs["labels"].get_subscription_count():
            ready.append((pubs["labels"], self._image_out(header, labels, "mono8")))
        if pubs["path_map"].get_subscription_count():
            ready.append((pubs["path_map"], self._image_out(header, path_map, "mono8")))
        if pubs["labels_color"].get_subscription_count():
            color = colorize(labels, self._palette, frame, config.color_alpha)
            ready.append((pubs["labels_color"], self._image_out(header, color, "rgb8")))
        for publisher, message in ready:
            publisher.publish(message)

    def _image_out(self, header, array: np.ndarray, encoding: str) -> Image | bytes:
        """An output image with the input's header: serialized bytes where rclpy agrees."""
        if self._cdr:
            return image_cdr.serialize_image(header.stamp.sec, header.stamp.nanosec,
                                             header.frame_id, array, encoding)
        out = Image()
        out.header = header
        image_codec.fill_image_msg(out, image_codec.encode_image(array, encoding))
        return out

    # -- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if self._diag_pub is None or self._config is None:
            return
        snap = self._stats.snapshot(time.monotonic())
        failed_now = snap["frames_failed"] > self._failed_at_last_report
        self._failed_at_last_report = int(snap["frames_failed"])
        rejected_now = int(snap["frames_rejected"]) - self._rejected_at_last_report
        self._rejected_at_last_report = int(snap["frames_rejected"])
        device = self._engine.model.device.type if self._engine else ""
        values = {**snap, "model": self._config.model, "device": device,
                  "mode": self._config.mode, "stream_resets": self._stream_resets,
                  "weights": self._engine.model.weights if self._engine else ""}
        if self._cache_mb is not None:
            values["feature_cache_mb"] = self._cache_mb
        if isinstance(self._engine, TemporalEngine):
            values["cache_misses"] = self._engine.cache_misses
            values["network_runs_pipelined"] = self._engine.network_runs
        out = DiagnosticArray()
        out.header.stamp = self.get_clock().now().to_msg()
        subscription = self._subscription
        findings = Findings(  # a failure: ERROR until a frame is segmented again
            failure=self._last_failure if failed_now or self._failing else None,
            rejected=rejected_now, rejected_reason=self._stats.last_rejected,
            input_timeout_s=self._config.input_timeout,
            topic=subscription.topic_name if subscription is not None else "")
        out.status = [diagnostic_status(self.get_fully_qualified_name(), device, values,
                                        subscription is not None, findings)]
        self._diag_pub.publish(out)


def main(args: list[str] | None = None) -> None:
    """Run the node until shutdown (the process entry point is ``seg_accel_ros.ros.process``)."""
    # ``kill -USR1 <pid>`` prints every thread's stack to stderr (a node that does not stop)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    rclpy.init(args=args)
    node = SegAccelNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if (node.get_parameter("autostart").value
                and node.trigger_configure() == TransitionCallbackReturn.SUCCESS):
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGINT shut the context down while the executor was building its wait set: rclpy
        # then raises its own error instead of ExternalShutdownException; a clean stop all the same
    finally:
        node._stop_worker()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

