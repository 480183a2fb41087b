"""What the engine returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import torch


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


def labels_and_confidence(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N x C x H x W`` logits -> (argmax labels, max softmax probability), ``N x H x W``."""
    if logits.stride(1) == 1 and logits.shape[1] > 1:  # channels-last: reduce the last dim
        x = logits.permute(0, 2, 3, 1).float()
        top, labels = x.max(dim=-1, keepdim=True)
        conf = torch.exp(x - top).sum(dim=-1).reciprocal_()  # = max softmax probability
        return labels.squeeze(-1), conf
    conf, labels = torch.softmax(logits.float(), dim=1).max(dim=1)
    return labels, conf
