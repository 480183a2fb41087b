"""Checkpoints (full training state) and exported weights (fp16 state dict), written atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def half_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating-point tensors to fp16 (others, e.g. BatchNorm counters, unchanged), on CPU."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone()
            for k, v in state.items()}


def export_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the model's weights as an fp16 state dict loadable by ``create_model``."""
    return atomic_save(half_state_dict(model.state_dict()), path)


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Save a training checkpoint (model / optimizer state dicts, counters, config)."""
    return atomic_save(state, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain Python only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
