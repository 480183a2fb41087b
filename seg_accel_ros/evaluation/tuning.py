"""Choosing whole-frame REUSE settings for one's own camera and network.

The shipped presets were chosen on two clips and one network; another camera, scene or network
(CGNet's labels, fitted closely, lose more when moved) needs its own. Every value of one swept
setting runs on the same frames as the dense network, and the fastest whose labels keep the
goal (pixel agreement with dense, and mIoU against ground truth where the input has labels) is
chosen. Pure Python: the tool around it is :mod:`seg_accel_ros.tools.tune`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# the family tuned: computed frames are the plain dense network, the others its labels moved
FRAME_REUSE: dict[str, Any] = {"mode": "temporal", "full_fraction": 1.0,
                               "reuse_granularity": "frame"}
DEFAULT_SWEEP = ("max_reuse_frames", (1, 2, 3, 4, 5, 6, 8))


@dataclass(frozen=True)
class TuneGoal:
    """What the chosen setting must keep: pixel agreement with the dense network's labels (%)
    and, where the input has labels, mIoU at most ``max_miou_drop`` points below dense."""

    min_agreement: float = 97.0
    max_miou_drop: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_agreement <= 100.0:
            raise ValueError(f"min_agreement is a percentage (0..100), got {self.min_agreement}")
        if not self.max_miou_drop >= 0.0:
            raise ValueError(f"max_miou_drop must be >= 0 mIoU points, got {self.max_miou_drop}")

    def describe(self, labelled: bool) -> str:
        """The goal in words, as the input allows it to be checked."""
        text = f"pixel agreement with dense at least {self.min_agreement:g}%"
        if labelled:
            text += f", mIoU at most {self.max_miou_drop:g} below dense"
        return text


@dataclass(frozen=True)
class Candidate:
    """One swept value's measured figures (None where not measured)."""

    value: Any
    throughput_ratio: float | None  # frames per second against dense
    agreement: float | None  # % of pixels equal to the dense network's labels
    miou: float | None  # against the input's labels

    def shortfalls(self, goal: TuneGoal, dense_miou: float | None) -> list[str]:
        """Why this value misses ``goal`` (empty: it keeps it)."""
        reasons = []
        if self.throughput_ratio is None:
            reasons.append("speed not measured")
        if self.agreement is None or self.agreement < goal.min_agreement:
            reasons.append(f"agreement {_pct(self.agreement)} < {goal.min_agreement:g}%")
        if dense_miou is not None:
            drop = None if self.miou is None else dense_miou - self.miou
            if drop is None or drop > goal.max_miou_drop:
                reasons.append(f"mIoU {_points(drop)} below dense > {goal.max_miou_drop:g}")
        return reasons


def candidates_from(sweep_rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The candidates of an evaluation report's sweep rows."""
    return [Candidate(r["value"], r.get("throughput_ratio"), r.get("pixel_agreement"),
                      r.get("miou")) for r in sweep_rows]


def choose(candidates: Sequence[Candidate], goal: TuneGoal,
           dense_miou: float | None) -> Candidate | None:
    """The fastest candidate that keeps ``goal`` (None when none does)."""
    keeping = [c for c in candidates if not c.shortfalls(goal, dense_miou)]
    if not keeping:
        return None
    return max(keeping, key=lambda c: (c.throughput_ratio, c.agreement))


def tuned_settings(base: Mapping[str, Any], field: str, value: Any) -> dict[str, Any]:
    """``base`` with the whole-frame REUSE family and the chosen ``value`` of ``field``."""
    return {**base, **FRAME_REUSE, field: value}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
