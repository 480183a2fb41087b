"""Engine configuration, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass

from seg_accel_ros.engine.temporal_policy import PIPELINED_FUSION, TemporalConfig

ENGINE_MODES = ("dense", "blocks", "temporal")
BLOCK_POLICIES = ("learned", "complexity")


@dataclass(frozen=True)
class EngineConfig:
    """How frames are segmented: ``dense`` (the baseline), ``blocks`` (FULL/LOW per block) or
    ``temporal`` (FULL/LOW/REUSE; the fields below ``full_fraction`` tune it, see
    :class:`~seg_accel_ros.engine.temporal_policy.TemporalConfig`)."""

    model: str = "swiftnet_lite0"
    weights: str = ""  # empty: the registry's default weights
    device: str = "cpu"
    mode: str = "dense"
    half_precision: bool = False  # CUDA only
    num_threads: int = 0  # torch and OpenCV CPU threads; 0 keeps their defaults
    block_size: int = 128  # input pixels per block side (blocks and temporal modes)
    full_fraction: float = 0.25  # share of blocks at full resolution (at most, in temporal)
    # which blocks run FULL: the network's trained scorer ("learned"; the cheap signals when
    # the network has none) or the cheap signals ("complexity")
    block_policy: str = "learned"
    reuse_threshold: float = TemporalConfig.reuse_threshold
    keyframe_interval: int = TemporalConfig.keyframe_interval
    max_reuse_frames: int = TemporalConfig.max_reuse_frames
    target_latency_ms: float = TemporalConfig.target_latency_ms
    motion_downscale: int = TemporalConfig.motion_downscale
    reuse_granularity: str = TemporalConfig.reuse_granularity
    low_fusion: bool = False  # temporal: LOW blocks fused with moved FULL output (trained)
    pipelined: bool = TemporalConfig.pipelined
    reuse_drift_budget: float = TemporalConfig.reuse_drift_budget

    def __post_init__(self) -> None:
        if self.mode not in ENGINE_MODES:
            raise ValueError(f"mode must be one of {ENGINE_MODES}, got {self.mode!r}")
        if not self.model:
            raise ValueError("model must name a registered model")
        if self.block_size < 32 or self.block_size % 64:
            raise ValueError(f"block_size must be a multiple of 64, got {self.block_size}")
        if not 0.0 <= self.full_fraction <= 1.0:
            raise ValueError(f"full_fraction must be in [0, 1], got {self.full_fraction}")
        if self.block_policy not in BLOCK_POLICIES:
            raise ValueError(f"block_policy must be one of {BLOCK_POLICIES}, "
                             f"got {self.block_policy!r}")
        if self.num_threads < 0:
            raise ValueError("num_threads must be >= 0")
        self.temporal()  # validates the temporal fields
        if self.pipelined and self.low_fusion:
            raise ValueError(PIPELINED_FUSION)
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    def temporal(self) -> TemporalConfig:
        """The temporal policy's part of this configuration."""
        return TemporalConfig(
            reuse_threshold=self.reuse_threshold, full_fraction=self.full_fraction,
            keyframe_interval=self.keyframe_interval, max_reuse_frames=self.max_reuse_frames,
            target_latency_ms=self.target_latency_ms, motion_downscale=self.motion_downscale,
            reuse_granularity=self.reuse_granularity, pipelined=self.pipelined,
            reuse_drift_budget=self.reuse_drift_budget)


def speed_note(config: EngineConfig) -> str | None:
    """Why ``config`` is not expected to run faster than the dense network on its device
    (measured: README, "Block-sparse execution", "Temporal mode on a CPU" and Limits), or
    None: the node logs it at configure, so a slow choice is not a surprise."""
    if config.device != "cpu":
        if config.mode == "blocks":
            return ("blocks mode is much slower than dense on a GPU: its block machinery issues "
                    "thousands of small kernels per frame (measured 12.6x dense's time at 25% "
                    "FULL, 1024x2048, fp16, batch 1, on an H100); use dense mode there")
        return None
    if config.mode == "temporal" and config.reuse_granularity == "block":
        return ("temporal mode with per-block REUSE (reuse_granularity: block) is usually "
                "slower than dense on a CPU, or barely faster at 1280x720: the block machinery "
                "costs more than REUSE saves. reuse_granularity: frame REUSEs whole frames, "
                "2-2.7x the dense throughput with the shipped presets and more with longer "
                "REUSE runs (config/temporal_cpu.yaml, config/temporal_cpu_720p.yaml)")
    if config.mode == "blocks":
        return ("blocks mode saves little on a CPU, and is slower than dense at small frame "
                "sizes: its halo gathers and copies cost about what the LOW blocks save")
    return None
