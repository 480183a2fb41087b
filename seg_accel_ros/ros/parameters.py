"""The node's parameters: one table of specs, declared with descriptors and validated.

Pure Python (no rclpy) so that validation is testable and shared with the docs. The node turns
each :class:`ParamSpec` into a ``ParameterDescriptor``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from seg_accel_ros.engine.config import BLOCK_POLICIES, ENGINE_MODES
from seg_accel_ros.engine.temporal_policy import REUSE_GRANULARITIES

Validator = Callable[[object], str | None]  # returns a reason when the value is bad


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: object
    description: str
    read_only: bool = False  # True: a change needs a new configure (set it at launch)
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    validate: Validator | None = None

    def check(self, value: object) -> str | None:
        """A reason why ``value`` is not acceptable, or None."""
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is list:
            if not isinstance(value, list | tuple):
                return f"{self.name} must be a list"
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return f"{self.name} must be of type {expected.__name__}, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name} must be a finite number, got {value}"
        if self.min_value is not None and isinstance(value, int | float) and value < self.min_value:
            return f"{self.name} must be >= {self.min_value}, got {value}"
        if self.max_value is not None and isinstance(value, int | float) and value > self.max_value:
            return f"{self.name} must be <= {self.max_value}, got {value}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        if self.validate is not None:
            return self.validate(value)
        return None


def _check_palette(value: object) -> str | None:
    values = list(value)  # type: ignore[call-overload]
    if len(values) % 3:
        return "palette must hold r,g,b triples (length divisible by 3)"
    if any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 255 for v in values):
        return "palette values must be integers in 0..255"
    return None


def _check_device(value: object) -> str | None:
    device = str(value)
    if device == "cpu" or device == "cuda" or (
            device.startswith("cuda:") and device[5:].isdigit()):
        return None
    return f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}"


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model", "swiftnet_lite0", "Registered model name (see seg_accel_eval --help).",
              read_only=True, validate=lambda v: None if v else "model must not be empty"),
    ParamSpec("weights", "", "Weights file; empty uses the model's packaged weights.",
              read_only=True),
    ParamSpec("device", "cpu", "Inference device: cpu, cuda or cuda:N.", read_only=True,
              validate=_check_device),
    ParamSpec("allow_cpu_fallback", False,
              "Run on the CPU when the requested CUDA device is absent instead of failing.",
              read_only=True),
    ParamSpec("half_precision", True, "fp16 inference on CUDA (ignored on CPU).",
              read_only=True),
    ParamSpec("num_threads", 0, "CPU threads of torch and OpenCV (inference, motion); 0 keeps "
              "their defaults.", read_only=True, min_value=0, max_value=256),
    ParamSpec("mode", "dense", "Engine mode: dense, blocks (FULL/LOW) or temporal "
              "(FULL/LOW/REUSE).", read_only=True, choices=ENGINE_MODES),
    ParamSpec("block_size", 128, "Block side in input pixels (blocks/temporal modes); a "
              "multiple of 64.", read_only=True, min_value=64, max_value=1024,
              validate=lambda v: None if v % 64 == 0 else "block_size must be a multiple of 64"),
    ParamSpec("block_policy", "learned", "Which blocks run FULL: 'learned' (the scorer trained "
              "for the network and its weights; the cheap signals where there is none) or "
              "'complexity' (image gradients, last prediction's boundaries and confidence).",
              read_only=True, choices=BLOCK_POLICIES),
    ParamSpec("full_fraction", 0.25, "Share of blocks computed at full resolution (blocks "
              "mode; at most, between keyframes, in temporal mode).", min_value=0.0,
              max_value=1.0),
    ParamSpec("reuse_threshold", 2.5, "Temporal mode: mean absolute grey-level residual after "
              "motion compensation below which a block REUSEs cached features.",
              min_value=0.0, max_value=255.0),
    ParamSpec("keyframe_interval", 12, "Temporal mode: all blocks run FULL at least every N "
              "frames (any all-FULL frame restarts the count).",
              min_value=1, max_value=10_000),
    ParamSpec("max_reuse_frames", 4, "Temporal mode: no block is REUSEd more than this many "
              "frames in a row (bounds how old any output pixel can be).", min_value=0,
              max_value=1000),
    ParamSpec("target_latency_ms", 0.0, "Temporal mode: latency the controller steers to by "
              "adapting reuse_threshold and full_fraction; 0 keeps them fixed.",
              min_value=0.0, max_value=60_000.0),
    ParamSpec("reuse_granularity", "block", "Temporal mode: REUSE decided per block, or for "
              "the whole frame ('frame': all blocks REUSEd when the frame's mean distortion is "
              "below reuse_threshold, none otherwise; faster on small frames on a CPU).",
              choices=REUSE_GRANULARITIES),
    ParamSpec("pipelined", False, "Temporal mode with reuse_granularity 'frame': answer every "
              "frame at once with the latest labels moved to it while the network segments "
              "frames on a second thread (latency of a REUSE frame; labels some frames old)."),
    ParamSpec("reuse_drift_budget", 0.0, "Temporal mode with reuse_granularity 'frame': > 0 "
              "lets each computed frame measure how far REUSE's labels drifted from the "
              "network's (share of pixels per frame carried) and makes the next REUSE run only "
              "as long as keeps that drift within this share (at most max_reuse_frames); 0: "
              "runs of max_reuse_frames.", min_value=0.0, max_value=1.0),
    ParamSpec("motion_downscale", 4, "Temporal mode: optical flow runs on the frame "
              "downscaled this many times.", min_value=1, max_value=32),
    ParamSpec("low_fusion", False, "Temporal mode: fuse LOW blocks with the moved output of "
              "their last FULL computation (trained weights bundled per network; for a network "
              "without them LOW blocks stay plain, with a warning at configure, and turning "
              "it on live is rejected). Off: it does not pay yet (README)."),
    ParamSpec("input_transport", "raw", "Subscribe to 'image' (raw) or 'image/compressed'.",
              read_only=True, choices=("raw", "compressed")),
    ParamSpec("qos_reliability", "best_effort", "Input QoS reliability.", read_only=True,
              choices=("best_effort", "reliable")),
    ParamSpec("qos_depth", 1, "Input QoS history depth.", read_only=True, min_value=1,
              max_value=100),
    ParamSpec("max_pixels", 8_294_400, "Frames with more pixels are rejected and counted.",
              min_value=1, max_value=100_000_000),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
              read_only=True, min_value=0.1, max_value=60.0),
    ParamSpec("input_timeout", 5.0, "Seconds without an input frame, while active, after "
              "which the diagnostics WARN that no input arrives; 0: never.", min_value=0.0,
              max_value=3600.0),
    ParamSpec("stats_window", 300, "Frames in the rolling window for rates and percentiles.",
              min_value=10, max_value=100_000),
    ParamSpec("palette", [], "Flat r,g,b list for ~/labels_color; empty uses the model's.",
              validate=_check_palette),
    ParamSpec("color_alpha", 0.0, "Blend of the input image into ~/labels_color (0: labels "
              "only).", min_value=0.0, max_value=1.0),
    ParamSpec("warmup_frames", 2, "Dummy frames run at configure to warm up the network.",
              read_only=True, min_value=0, max_value=100),
    ParamSpec("warmup_size", [480, 640], "Height, width of the warm-up frames.",
              read_only=True,
              validate=lambda v: None if len(v) == 2 and all(isinstance(x, int) and 16 <= x
                                                              <= 8192 for x in v)
              else "warmup_size must be [height, width], each in 16..8192"),
)
SPECS: Mapping[str, ParamSpec] = {p.name: p for p in PARAMS}
# Temporal-mode parameters, passed to the engine as they are and tunable while running.
TEMPORAL_RUNTIME = ("reuse_threshold", "keyframe_interval", "max_reuse_frames",
                    "target_latency_ms", "motion_downscale", "low_fusion",
                    "reuse_granularity", "pipelined", "reuse_drift_budget")


@dataclass(frozen=True)
class NodeConfig:
    """Validated values of every node parameter."""

    model: str
    weights: str
    device: str
    allow_cpu_fallback: bool
    half_precision: bool
    num_threads: int
    mode: str
    block_size: int
    block_policy: str
    full_fraction: float
    reuse_threshold: float
    keyframe_interval: int
    max_reuse_frames: int
    target_latency_ms: float
    motion_downscale: int
    reuse_granularity: str
    pipelined: bool
    reuse_drift_budget: float
    low_fusion: bool
    input_transport: str
    qos_reliability: str
    qos_depth: int
    max_pixels: int
    diagnostics_period: float
    input_timeout: float
    stats_window: int
    palette: tuple[int, ...]
    color_alpha: float
    warmup_frames: int
    warmup_size: tuple[int, int]

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> NodeConfig:
        """Validate ``values`` (name -> value); raise ValueError with every reason."""
        reasons = [r for name, spec in SPECS.items()
                   if (r := spec.check(values.get(name, spec.default)))]
        if reasons:
            raise ValueError("; ".join(reasons))
        kwargs = {f.name: values.get(f.name, SPECS[f.name].default) for f in fields(cls)}
        kwargs["palette"] = tuple(kwargs["palette"])  # type: ignore[arg-type]
        kwargs["warmup_size"] = tuple(kwargs["warmup_size"])  # type: ignore[arg-type]
        kwargs["diagnostics_period"] = float(kwargs["diagnostics_period"])  # type: ignore[arg-type]
        kwargs["color_alpha"] = float(kwargs["color_alpha"])  # type: ignore[arg-type]
        for name in ("full_fraction", "reuse_threshold", "target_latency_ms",
                     "reuse_drift_budget", "input_timeout"):
            kwargs[name] = float(kwargs[name])  # type: ignore[arg-type]
        return cls(**kwargs)  # type: ignore[arg-type]
