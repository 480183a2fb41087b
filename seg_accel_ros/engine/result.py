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
    cache_bytes: int | None = None  # feature cache held after this frame (temporal mode)

    @property
    def cache_mb(self) -> float | None:
        """:attr:`cache_bytes` in MiB (None outside temporal mode)."""
        return None if self.cache_bytes is None else self.cache_bytes / 2**20

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))


# Values per chunk of the per-pixel reduction: small enough that the exponentials of a chunk
# are still in cache when they are summed (1.5x faster than whole 720p maps on CPU).
REDUCE_CHUNK = 1 << 18


def labels_and_confidence(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N x C x H x W`` logits -> (argmax labels, max softmax probability), ``N x H x W``.

    Ties go to the lowest class id, like ``torch.max``.
    """
    x = logits.float()
    n, c, h, w = x.shape
    labels = torch.empty((n, h, w), dtype=torch.long, device=x.device)
    conf = torch.empty((n, h, w), dtype=torch.float32, device=x.device)
    if x.device.type != "cpu":  # chunks only help a CPU cache; on a GPU they are launches
        _reduce_chunk(x, labels, conf)
        return labels, conf
    rows = max(1, REDUCE_CHUNK // max(1, c * w))
    for i in range(n):
        for y in range(0, h, rows):
            _reduce_chunk(x[i:i + 1, :, y:y + rows], labels[i:i + 1, y:y + rows],
                          conf[i:i + 1, y:y + rows])
    return labels, conf


def _reduce_chunk(x: torch.Tensor, labels: torch.Tensor, conf: torch.Tensor) -> None:
    """Argmax and ``1 / sum(exp(x - max))`` (= the max softmax probability) of one chunk."""
    if x.stride(1) == 1 and x.shape[1] > 1:  # channels-last: reduce the last dim
        v = x.permute(0, 2, 3, 1)
        top, idx = v.max(dim=-1, keepdim=True)
        labels.copy_(idx.squeeze(-1))
        torch.sum(torch.exp(v - top), dim=-1, out=conf)
    else:
        torch.max(x, dim=1, out=(conf, labels))
        torch.sum(torch.exp(x - conf[:, None]), dim=1, out=conf)
    conf.reciprocal_()
