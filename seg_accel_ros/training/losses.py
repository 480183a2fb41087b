"""Segmentation losses: cross-entropy, class-balanced cross-entropy and OHEM cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX

# Pixel shares of the CamVid train labels per class 0..10 (../shared/data/README.md).
CAMVID_TRAIN_FREQUENCIES = (.169, .233, .010, .317, .045, .097, .012, .011, .059, .006, .003)


def enet_class_weights(frequencies: Sequence[float], c: float = 1.02,
                       max_weight: float = 10.0) -> torch.Tensor:
    """``1 / ln(c + p)`` per class (ENet), scaled to mean 1 and clipped at ``max_weight``."""
    w = torch.tensor([1.0 / math.log(c + p) for p in frequencies])
    w = w / w.mean()
    return w.clamp(max=max_weight)


class OhemCrossEntropy(nn.Module):
    """Online hard example mining: mean cross-entropy over the hard pixels only.

    A pixel is hard when its predicted probability of the true class is below ``threshold``;
    at least ``min_kept`` (a fraction of the valid pixels) of the highest-loss pixels are kept.
    """

    def __init__(self, ignore_index: int = CAMVID_IGNORE_INDEX, threshold: float = 0.7,
                 min_kept: float = 0.1, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.loss_threshold = -math.log(threshold)
        self.min_kept = min_kept
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits.float(), target, weight=self.weight,
                               ignore_index=self.ignore_index, reduction="none").flatten()
        valid = target.flatten() != self.ignore_index
        loss = loss[valid]
        if loss.numel() == 0:
            return logits.sum() * 0.0
        k = max(1, int(self.min_kept * loss.numel()))
        hard = loss[loss > self.loss_threshold]
        if hard.numel() < k:
            hard = loss.topk(k).values
        return hard.mean()


def build_loss(name: str, ignore_index: int = CAMVID_IGNORE_INDEX,
               class_weights: torch.Tensor | None = None) -> nn.Module:
    """``ce``, ``balanced`` (ENet class weights from CamVid train) or ``ohem``."""
    if name == "ce":
        return nn.CrossEntropyLoss(weight=class_weights, ignore_index=ignore_index)
    if name == "balanced":
        weights = class_weights if class_weights is not None else enet_class_weights(
            CAMVID_TRAIN_FREQUENCIES)
        return nn.CrossEntropyLoss(weight=weights, ignore_index=ignore_index)
    if name == "ohem":
        return OhemCrossEntropy(ignore_index, weight=class_weights)
    raise ValueError(f"unknown loss {name!r} (ce, balanced, ohem)")
