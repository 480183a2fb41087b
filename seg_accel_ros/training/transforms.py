"""Training augmentation: random scale, pad, random crop, horizontal flip, colour jitter
(NumPy / OpenCV)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX

# Pad colour: the ImageNet mean, which normalises to ~0.
PAD_RGB = (124, 116, 104)


def random_scale(image: np.ndarray, labels: np.ndarray, scale: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Resize by ``scale``: bilinear for the image, nearest for the labels."""
    h, w = labels.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return image, labels
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return (cv2.resize(image, size, interpolation=interp),
            cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST))


def pad_to(image: np.ndarray, labels: np.ndarray, height: int, width: int,
           ignore_index: int = CAMVID_IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Pad bottom / right up to ``height`` x ``width`` (image: mean colour, labels: ignore)."""
    h, w = labels.shape
    ph, pw = max(0, height - h), max(0, width - w)
    if ph == 0 and pw == 0:
        return image, labels
    image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=PAD_RGB)
    labels = cv2.copyMakeBorder(labels, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=ignore_index)
    return image, labels


def random_crop(image: np.ndarray, labels: np.ndarray, height: int, width: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``height`` x ``width`` window at a uniformly random position (input at least that big)."""
    h, w = labels.shape
    y = int(rng.integers(0, h - height + 1))
    x = int(rng.integers(0, w - width + 1))
    return image[y:y + height, x:x + width], labels[y:y + height, x:x + width]


def random_hflip(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right with probability 1/2."""
    if rng.random() < 0.5:
        return image[:, ::-1], labels[:, ::-1]
    return image, labels


@dataclass(frozen=True)
class ColorChange:
    """One photometric change: brightness and contrast factors, saturation factor, gamma."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    gamma: float = 1.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The changed HxWx3 uint8 RGB image (contrast about its mean grey level)."""
        luma = np.array([0.299, 0.587, 0.114], np.float32)
        x = image.astype(np.float32) * (self.brightness / 255.0)
        mean = float((x @ luma).mean())
        x = (x - mean) * self.contrast + mean
        grey = (x @ luma)[..., None]
        x = grey + (x - grey) * self.saturation
        x = np.clip(x, 0.0, 1.0) ** self.gamma
        return (x * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast and saturation factors in ``[1 - s, 1 + s]`` and gamma in
    ``[1 - gamma, 1 + gamma]``.

    CamVid was filmed with one camera, mostly on dark asphalt; other cameras and road surfaces
    look different (docs/models/swiftnet_lite0.md: what it changed on the highway clip).
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    gamma: float = 0.0

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation", "gamma"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} jitter must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def of_strength(cls, strength: float) -> ColorJitter:
        """Brightness, contrast and saturation ``strength``, gamma half of it."""
        return cls(strength, strength, strength, strength / 2)

    def sample(self, rng: np.random.Generator) -> ColorChange:
        def factor(spread: float) -> float:
            return float(rng.uniform(1 - spread, 1 + spread)) if spread else 1.0

        return ColorChange(factor(self.brightness), factor(self.contrast),
                           factor(self.saturation), factor(self.gamma))


@dataclass(frozen=True)
class TrainTransform:
    """Random scale in ``scale_range``, pad, random ``crop`` (H, W), random horizontal flip,
    then ``color`` jitter (none by default)."""

    crop: tuple[int, int] = (384, 384)
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    ignore_index: int = CAMVID_IGNORE_INDEX
    color: ColorJitter | None = None

    def __call__(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.scale_range
        image, labels = random_scale(image, labels, float(rng.uniform(lo, hi)))
        height, width = self.crop
        image, labels = pad_to(image, labels, height, width, self.ignore_index)
        image, labels = random_crop(image, labels, height, width, rng)
        if self.flip:
            image, labels = random_hflip(image, labels, rng)
        if self.color is not None:
            image = self.color.sample(rng)(image)
        return image, labels


def to_tensors(image: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """HxWx3 uint8 RGB + HxW labels -> (3xHxW uint8, HxW int64) tensors (normalise later)."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    y = torch.from_numpy(np.ascontiguousarray(labels)).long()
    return x, y
