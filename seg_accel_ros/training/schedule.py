"""Learning-rate schedules as a factor of the base rate over training progress in [0, 1]."""

from __future__ import annotations

import math

from torch.optim import Optimizer


def lr_factor(progress: float, kind: str = "poly", warmup: float = 0.0, power: float = 0.9,
              floor: float = 0.0) -> float:
    """Linear warm-up over the first ``warmup`` of progress, then ``poly`` or ``cosine`` decay."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    t = (progress - warmup) / max(1e-12, 1.0 - warmup)
    if kind == "poly":
        decay = (1.0 - t) ** power
    elif kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * t))
    else:
        raise ValueError(f"unknown schedule {kind!r} (poly, cosine)")
    return floor + (1.0 - floor) * decay


def set_lr(optimizer: Optimizer, factor: float) -> None:
    """Set every parameter group's rate to its ``initial_lr`` times ``factor``."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor


def training_progress(step: int, total_steps: int, elapsed_s: float = 0.0,
                      budget_s: float | None = None) -> float:
    """Progress by steps or, with a time budget, by time, whichever is further."""
    progress = step / max(1, total_steps)
    if budget_s:
        progress = max(progress, elapsed_s / budget_s)
    return min(progress, 1.0)
