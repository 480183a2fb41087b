"""Accuracy and speed of an engine on a labelled dataset, independent of any command line.

:func:`evaluate` runs every frame through an engine (anything with ``process(image_rgb) ->
FrameResult`` and ``reset()``, e.g. :class:`~seg_accel_ros.engine.dense.DenseEngine`),
accumulates one :class:`~seg_accel_ros.evaluation.metrics.ConfusionMatrix` over the whole split
and times each call; :class:`EvalReport` holds the figures, formats the summary and converts to
JSON. Scores are in percent, times in milliseconds of wall-clock time per ``process`` call.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from seg_accel_ros.engine.result import FrameResult
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models.classes import CAMVID_CLASSES, CAMVID_IGNORE_INDEX


class FrameEngine(Protocol):
    """What :func:`evaluate` needs from an engine."""

    def process(self, image_rgb: np.ndarray) -> FrameResult: ...

    def reset(self) -> None: ...


class LabelledDataset(Protocol):
    """A sequence of (HxWx3 uint8 RGB image, HxW integer labels) pairs, in temporal order."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class EvalReport:
    """Every figure the evaluation prints; scores in percent (NaN: undefined, see metrics)."""

    class_names: tuple[str, ...]
    iou: list[float]
    class_accuracy_per_class: list[float]
    miou: float
    pixel_accuracy: float
    class_accuracy: float
    unscored_predictions: float  # pixels predicted outside the scored classes (e.g. void)
    frames: int
    image_size: tuple[int, int] | None  # (width, height); None when the frames differ in size
    time_ms_median: float
    time_ms_mean: float
    model: str = ""
    weights: str = ""
    mode: str = "dense"
    device: str = ""
    dataset: str = ""
    ignore_index: int | None = CAMVID_IGNORE_INDEX
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes null)."""
        return {
            "model": self.model,
            "weights": self.weights,
            "mode": self.mode,
            "device": self.device,
            "dataset": self.dataset,
            "frames": self.frames,
            "image_size": list(self.image_size) if self.image_size else None,
            "ignore_index": self.ignore_index,
            "units": {"scores": "percent", "time": "ms per frame"},
            "miou": _json_number(self.miou),
            "pixel_accuracy": _json_number(self.pixel_accuracy),
            "class_accuracy": _json_number(self.class_accuracy),
            "unscored_predictions": _json_number(self.unscored_predictions),
            "iou_per_class": {n: _json_number(v) for n, v in zip(self.class_names, self.iou,
                                                                   strict=True)},
            "accuracy_per_class": {n: _json_number(v) for n, v in zip(
                self.class_names, self.class_accuracy_per_class, strict=True)},
            "time_ms": {"median": _json_number(self.time_ms_median),
                        "mean": _json_number(self.time_ms_mean)},
            **self.extra,
        }

    def summary(self) -> str:
        """A human-readable multi-line summary of every figure in :meth:`to_dict`."""
        size = f"{self.image_size[0]}x{self.image_size[1]}" if self.image_size else "mixed"
        ignored = (f", label {self.ignore_index} ignored" if self.ignore_index is not None
                   else "")
        lines = [
            f"model      {self.model}  (weights: {self.weights})",
            f"engine     {self.mode} on {self.device}",
            f"dataset    {self.dataset}: {self.frames} frames, {size}{ignored}",
            f"time       {self.time_ms_median:.1f} ms/frame median, "
            f"{self.time_ms_mean:.1f} ms/frame mean",
            "",
            f"{'class':<12} {'IoU %':>7} {'acc %':>7}",
        ]
        for name, iou, acc in zip(self.class_names, self.iou, self.class_accuracy_per_class,
                                  strict=True):
            lines.append(f"{name:<12} {_fmt(iou):>7} {_fmt(acc):>7}")
        lines += [
            "",
            f"mIoU            {_fmt(self.miou)} %",
            f"pixel accuracy  {_fmt(self.pixel_accuracy)} %",
            f"class accuracy  {_fmt(self.class_accuracy)} %",
            f"predicted outside the scored classes  {_fmt(self.unscored_predictions)} %",
        ]
        return "\n".join(lines)


def evaluate(engine: FrameEngine, dataset: LabelledDataset, *,
             class_names: Sequence[str] | None = None,
             ignore_index: int | None = CAMVID_IGNORE_INDEX,
             limit: int | None = None, warmup: int = 1,
             progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Run ``dataset`` (the first ``limit`` frames) through ``engine`` and score it.

    ``warmup`` untimed calls on the first frame precede the timed run (first calls are slow:
    allocation, kernel selection); the engine is then reset so temporal engines start fresh.
    The scored classes are the dataset's (``class_names``, default ``dataset.class_names`` or
    CamVid's 11), not the model's: a model label outside them (e.g. ESPNet's Unlabelled, 11)
    counts as a miss for the ground-truth class. ``progress(done, total)`` is called after
    each frame. Model, weights and device are read from ``engine.model`` when the engine has
    one (a :class:`~seg_accel_ros.models.LoadedModel`). Frames are scored at their own size:
    the networks accept any size (CamVid's 480x360 included) and return input-size labels.
    """
    total = len(dataset) if limit is None else max(0, min(limit, len(dataset)))
    if total == 0:
        raise ValueError("the dataset is empty (or limit is 0): nothing to evaluate")
    loaded = getattr(engine, "model", None)
    spec = getattr(loaded, "spec", None)
    if class_names is None:
        class_names = getattr(dataset, "class_names", CAMVID_CLASSES)
    matrix = ConfusionMatrix(len(class_names))

    if warmup > 0:
        image, _ = dataset[0]
        for _ in range(warmup):
            engine.process(image)
    engine.reset()

    times_ms: list[float] = []
    sizes: set[tuple[int, int]] = set()
    for index in range(total):
        image, labels = dataset[index]
        if image.shape[:2] != labels.shape:
            raise ValueError(f"frame {index}: image {image.shape[:2]} and labels "
                             f"{labels.shape} differ in size")
        t0 = time.perf_counter()
        result = engine.process(image)
        times_ms.append((time.perf_counter() - t0) * 1e3)
        if result.labels.shape != labels.shape:
            raise ValueError(f"frame {index}: engine returned labels of shape "
                             f"{result.labels.shape} for a {labels.shape} frame")
        matrix.update(result.labels, labels, ignore_index)
        sizes.add((image.shape[1], image.shape[0]))
        if progress is not None:
            progress(index + 1, total)

    return EvalReport(
        class_names=tuple(class_names),
        iou=[100.0 * v for v in matrix.iou()],
        class_accuracy_per_class=[100.0 * v for v in matrix.class_accuracy()],
        miou=100.0 * matrix.mean_iou(),
        pixel_accuracy=100.0 * matrix.pixel_accuracy(),
        class_accuracy=100.0 * matrix.mean_class_accuracy(),
        unscored_predictions=100.0 * matrix.unscored_share(),
        frames=total,
        image_size=next(iter(sizes)) if len(sizes) == 1 else None,
        time_ms_median=statistics.median(times_ms),
        time_ms_mean=statistics.fmean(times_ms),
        model=getattr(spec, "name", ""),
        weights=str(getattr(loaded, "weights", "")),
        device=str(getattr(loaded, "device", "")),
        ignore_index=ignore_index,
    )


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
