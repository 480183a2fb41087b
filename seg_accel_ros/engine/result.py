"""What the engine returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class BlockPath(IntEnum):
    """The path a block took; these values are what ``~/path_map`` carries."""

    REUSE = 0
    LOW = 1
    FULL = 2


@dataclass
class FrameResult:
    """Labels and bookkeeping for one input frame (all arrays at input resolution)."""

    labels: np.ndarray  # HxW uint8 class ids
    path_map: np.ndarray  # HxW uint8 BlockPath values
    confidence: np.ndarray | None = None  # HxW float32 max softmax probability
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    path_mix: dict[str, float] = field(default_factory=dict)  # "full"/"low"/"reuse" -> share

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))
