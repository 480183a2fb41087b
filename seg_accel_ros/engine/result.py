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
    # frames since the network computed these labels (whole-frame REUSE only; None elsewhere)
    label_age: int | None = None

    @property
    def cache_mb(self) -> float | None:
        """:attr:`cache_bytes` in MiB (None outside temporal mode)."""
        return None if self.cache_bytes is None else self.cache_bytes / 2**20

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))


# Values per chunk of the per-pixel reduction: small enough that a chunk's planes and
# exponentials stay in cache between the passes over them (2x faster than whole 720p maps).
REDUCE_CHUNK = 1 << 18


def labels_and_confidence(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``N x C x H x W`` logits -> (argmax labels, max softmax probability), ``N x H x W``.

    Ties go to the lowest class id, like ``torch.max``; a pixel with a NaN logit gets the
    last class.
    """
    labels, conf = _reduce(logits, confidence=True)
    assert conf is not None
    return labels, conf


def pixel_labels(logits: torch.Tensor) -> torch.Tensor:
    """``N x C x H x W`` logits -> argmax labels ``N x H x W``, as :func:`labels_and_confidence`
    gives them, without the softmax (about 40% cheaper)."""
    return _reduce(logits, confidence=False)[0]


def pixel_maps(logits: torch.Tensor, confidence: bool) -> tuple[torch.Tensor, ...]:
    """What an engine returns per pixel: ``(labels,)``, or ``(labels, confidence)`` when a
    policy reads the confidence."""
    return labels_and_confidence(logits) if confidence else (pixel_labels(logits),)


@dataclass(frozen=True)
class PixelReduction:
    """Logits -> what an engine returns per pixel (:func:`pixel_maps`) of the first
    ``classes`` channels (all when None). Engines may take shortcuts that give the same maps,
    such as labels of upsampled logits from the labels before upsampling."""

    classes: int | None = None
    confidence: bool = False

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return pixel_maps(self.classes_of(logits), self.confidence)

    def classes_of(self, logits: torch.Tensor) -> torch.Tensor:
        """The channels that are class scores."""
        return logits if self.classes is None else logits[:, :self.classes]


def _reduce(logits: torch.Tensor, confidence: bool
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = logits.float()
    n, c, h, w = x.shape
    labels = torch.empty((n, h, w), dtype=torch.long, device=x.device)
    conf = torch.empty((n, h, w), dtype=torch.float32, device=x.device) if confidence else None
    # class c weighs C - c: where several classes reach the max, the lowest weighs most
    weights = torch.arange(c, 0, -1, dtype=torch.uint8 if c < 256 else torch.int32,
                           device=x.device).view(1, c, 1, 1)
    if x.device.type != "cpu":  # chunks only help a CPU cache; on a GPU they are launches
        _reduce_chunk(x, weights, labels, conf)
        return labels, conf
    rows = max(1, REDUCE_CHUNK // max(1, c * w))
    for i in range(n):
        for y in range(0, h, rows):
            _reduce_chunk(x[i:i + 1, :, y:y + rows], weights, labels[i:i + 1, y:y + rows],
                          None if conf is None else conf[i:i + 1, y:y + rows])
    return labels, conf


def _reduce_chunk(x: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor,
                  conf: torch.Tensor | None) -> None:
    """Argmax and ``1 / sum(exp(x - max))`` (= the max softmax probability) of one chunk.

    On class planes every pass runs across pixels: the max, then the lowest class reaching it
    (the largest of ``weights`` where a class equals the max), then the exponentials. Reducing
    the ``C`` values of each pixel one pixel at a time is 2x slower.
    """
    planes = x.contiguous()
    c = planes.shape[1]
    top = torch.amax(planes, 1, keepdim=True)
    first = (planes == top).to(weights.dtype).mul_(weights).amax(1)
    torch.sub(c, first, out=labels)
    labels.clamp_(max=c - 1)  # NaN: no class equals the max
    if conf is not None:
        torch.sum(torch.exp(planes - top), dim=1, out=conf)
        conf.reciprocal_()
