"""Engine configuration, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass

ENGINE_MODES = ("dense", "blocks", "temporal")


@dataclass(frozen=True)
class EngineConfig:
    """How frames are segmented. Only ``dense`` exists until the block engine lands."""

    model: str = "swiftnet_lite0"
    weights: str = ""  # empty: the registry's default weights
    device: str = "cpu"
    mode: str = "dense"
    half_precision: bool = False  # CUDA only
    num_threads: int = 0  # CPU intra-op threads; 0 keeps torch's default

    def __post_init__(self) -> None:
        if self.mode not in ENGINE_MODES:
            raise ValueError(f"mode must be one of {ENGINE_MODES}, got {self.mode!r}")
        if not self.model:
            raise ValueError("model must name a registered model")
        if self.num_threads < 0:
            raise ValueError("num_threads must be >= 0")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
