"""Training datasets: CamVid train with augmentation, and synthetic scenes for smoke tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from seg_accel_ros.training.transforms import to_tensors

Sample = tuple[np.ndarray, np.ndarray]
Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], Sample]


class AugmentedSegmentation(Dataset):
    """Wraps a sequence of ``(image, labels)`` pairs and applies ``transform``.

    The random state of sample ``i`` in epoch ``e`` is derived from ``(seed, e, i)`` only, so
    the augmented data do not depend on the number of loader workers and an epoch can be
    reproduced on resume. With ``cache`` the decoded images are kept in memory (CamVid train is
    about 200 MB) and shared with forked loader workers. ``repeats`` makes one epoch that many
    passes over ``base``, each sample augmented afresh (on a fast GPU an epoch of CamVid train
    lasts about a second: fewer, longer epochs restart the loader workers less often).
    """

    def __init__(self, base: Sequence[Sample], transform: Transform | None, seed: int = 0,
                 cache: bool = True, repeats: int = 1) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        self.base = base
        self.transform = transform
        self.seed = seed
        self.repeats = repeats
        self.epoch = 0
        self._cache: list[Sample] | None = [base[i] for i in range(len(base))] if cache else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base) * self.repeats

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = index % len(self.base)
        image, labels = self._cache[item] if self._cache is not None else self.base[item]
        if self.transform is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image, labels = self.transform(image, labels, rng)
        return to_tensors(image, labels)


class Subset(Sequence):
    """The first ``n`` items of a sequence (smoke tests, quick experiments)."""

    def __init__(self, base: Sequence[Sample], n: int) -> None:
        self.base, self.n = base, min(n, len(base))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return self.base[index]


class SyntheticScenes(Sequence):
    """Deterministic toy scenes: coloured rectangles and discs on a sky / road background.

    Each class has its own colour (plus noise), so a network can learn them in a few steps;
    used when the CamVid files are not available.
    """

    def __init__(self, count: int = 8, size: tuple[int, int] = (96, 128), num_classes: int = 11,
                 seed: int = 0) -> None:
        self.count, self.size, self.num_classes, self.seed = count, size, num_classes, seed
        rng = np.random.default_rng(1234)
        self.colours = rng.integers(0, 256, (num_classes, 3)).astype(np.uint8)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.count:
            raise IndexError(index)
        rng = np.random.default_rng((self.seed, index))
        h, w = self.size
        labels = np.zeros((h, w), np.uint8)
        labels[h // 2:] = 3 % self.num_classes
        for _ in range(4):
            cls = int(rng.integers(0, self.num_classes))
            y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            y1, x1 = y0 + int(rng.integers(8, h // 2)), x0 + int(rng.integers(8, w // 2))
            if rng.random() < 0.5:
                labels[y0:y1, x0:x1] = cls
            else:
                cv2.circle(labels, (x0, y0), int(rng.integers(4, h // 4)), cls, -1)
        image = self.colours[labels].astype(np.int16)
        image += rng.integers(-20, 21, image.shape, dtype=np.int16)
        return np.clip(image, 0, 255).astype(np.uint8), labels
