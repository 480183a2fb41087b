"""Cross-resolution fusion of LOW blocks with moved FULL output (AR-Seg's CReFF idea).

A LOW block sees the frame at half resolution; the last FULL computation of the same scene
content, moved here by the motion, saw it at full resolution but some frames ago. A small
gating network looks at both (at LOW's resolution, where it is cheap) and decides per pixel
how much to trust the moved FULL output; the blend itself is made at full resolution, so
that fine structure the FULL computation resolved survives where the gate trusts it.

It works on the network output (the logits), the one map every segmentation network has, so
any converted network can use it without knowing its inner features. It is trained with a
feature-similarity loss to the dense network's output (AR-Seg's FST), see
:mod:`seg_accel_ros.training.fusion`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

MAX_AGE = 8.0  # frames; the age input saturates here


class FusionInputs(nn.Module):
    """Stands in for a fusion in the engine: keeps LOW blocks plain and records what a fusion
    would have been given (``low, moved_full, valid, age``), for training on the inputs the
    engine really produces."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[torch.Tensor, ...]] = []

    def forward(self, low: torch.Tensor, moved_full: torch.Tensor, valid: torch.Tensor,
                age: torch.Tensor, low_up: torch.Tensor | None = None) -> torch.Tensor:
        self.records.append((low.clone(), moved_full.clone(), valid.clone(), age.clone()))
        if low_up is None:
            low_up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        return low_up


class CrossResolutionFusion(nn.Module):
    """``forward(low, moved_full, valid, age)`` -> fused full-resolution logits.

    - ``low``: ``N x C x h x w`` LOW-path logits at half resolution;
    - ``moved_full``: ``N x C x 2h x 2w`` logits of the last FULL computation, moved here;
    - ``valid``: ``N x 1 x 2h x 2w``, 1 where such a FULL computation exists;
    - ``age``: ``N x 1 x 2h x 2w``, frames since it.
    """

    def __init__(self, num_classes: int, hidden: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.gate = nn.Sequential(  # per pixel, then a 3x3 neighbourhood: a few % of a block
            nn.Conv2d(2 * num_classes + 3, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 3, padding=1))

    def gate_logits(self, low: torch.Tensor, moved_full: torch.Tensor, valid: torch.Tensor,
                    age: torch.Tensor) -> torch.Tensor:
        """``N x 1 x h x w``: how much to take the moved FULL output (before the sigmoid)."""
        pooled = F.avg_pool2d(moved_full * valid, 2)
        v = F.avg_pool2d(valid, 2)
        a = F.avg_pool2d(age.clamp(max=MAX_AGE) / MAX_AGE, 2)
        disagreement = (low.softmax(1) - pooled.softmax(1)).abs().sum(1, keepdim=True)
        return self.gate(torch.cat([low, pooled, v, a, disagreement * v], 1))

    def forward(self, low: torch.Tensor, moved_full: torch.Tensor, valid: torch.Tensor,
                age: torch.Tensor, low_up: torch.Tensor | None = None) -> torch.Tensor:
        """``low_up``: ``low`` already upsampled to full resolution (the engine has it with
        its neighbours' halo); by default bilinear within the block."""
        gate = torch.sigmoid(self.gate_logits(low, moved_full, valid, age))
        gate = F.interpolate(gate, scale_factor=2, mode="bilinear", align_corners=False) * valid
        if low_up is None:
            low_up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.lerp(low_up, moved_full, gate)


def fusion_path(model_name: str) -> Path:
    """Where the project's trained fusion weights for ``model_name`` live."""
    return Path(__file__).resolve().parent.parent / "models" / "weights" / \
        f"fusion_{model_name}.pt"


def load_fusion(model_name: str, num_classes: int, path: str | Path | None = None,
                device: torch.device | str = "cpu") -> CrossResolutionFusion | None:
    """The trained fusion for a network (``path`` or the bundled file); None when there is
    none for it. A file for another class count raises ``ValueError``."""
    file = Path(path) if path else fusion_path(model_name)
    if not file.is_file():
        if path:
            raise FileNotFoundError(f"fusion weights not found: {file}")
        return None
    state = torch.load(file, map_location="cpu", weights_only=True)
    fusion = CrossResolutionFusion(num_classes, int(state.get("hidden", 16)))
    try:
        fusion.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise ValueError(f"{file} is not a fusion checkpoint for {num_classes} classes: "
                         f"{exc}") from None
    return fusion.to(device).eval()
