"""Frame-by-frame scoring of one evaluation run: accuracy, fidelity to dense, time, path mix.

A run is one engine configuration on one stream of frames. :class:`RunScorer` takes, for every
frame, what the engine produced (:class:`FrameOutcome`) and, when a dense reference ran on the
same frame, the dense labels; it keeps one record per frame and accumulates

* accuracy against the ground truth (one confusion matrix over the run, ignore label left out);
* fidelity against the dense network: pixel agreement and mIoU with the dense labels as target;
* engine time per frame (offline) or end-to-end latency (live), and the FULL/LOW/REUSE shares.

Scores are percentages; times milliseconds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.evaluation.sources import EvalFrame

PATHS = ("full", "low", "reuse")


@dataclass
class FrameOutcome:
    """What one engine gave for one frame."""

    labels: np.ndarray  # HxW uint8 class ids
    path_map: np.ndarray | None = None  # HxW uint8 BlockPath values
    path_mix: dict[str, float] = field(default_factory=dict)  # block shares
    time_ms: float | None = None  # engine wall time (offline)
    latency_ms: float | None = None  # input receipt to labels receipt (live)
    cache_mb: float | None = None  # feature cache the engine holds after the frame (temporal)


def path_mix_from_map(path_map: np.ndarray) -> dict[str, float]:
    """Pixel shares of FULL / LOW / REUSE in a path map (the live node sends no block shares)."""
    counts = np.bincount(path_map.ravel(), minlength=3)[:3].astype(np.float64)
    total = max(1.0, counts.sum())
    return {"full": counts[BlockPath.FULL] / total, "low": counts[BlockPath.LOW] / total,
            "reuse": counts[BlockPath.REUSE] / total}


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / max / mean of ``values`` (None when empty); p95 by nearest rank."""
    if not values:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    ordered = sorted(values)
    rank = max(0, math.ceil(0.95 * len(ordered)) - 1)
    return {"p50": statistics.median(ordered), "p95": ordered[rank], "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


def _pct(value: float) -> float:
    return 100.0 * value


class RunScorer:
    """Accumulates the figures of one run frame by frame and keeps one record per frame."""

    def __init__(self, class_names: Sequence[str], ignore_index: int | None,
                 model_classes: int) -> None:
        self.class_names = tuple(class_names)
        self.ignore_index = ignore_index
        self.accuracy = ConfusionMatrix(len(self.class_names))
        self.fidelity = ConfusionMatrix(model_classes)
        self.agreeing = 0
        self.compared = 0
        self.labelled_frames = 0
        self.times_ms: list[float] = []
        self.latencies_ms: list[float] = []
        self.mixes: list[dict[str, float]] = []
        self.cache_mb: list[float] = []
        self.records: list[dict[str, Any]] = []
        self.sizes: set[tuple[int, int]] = set()
        self.missing = 0

    @property
    def frames(self) -> int:
        """Frames with an outcome."""
        return len(self.mixes)

    def add(self, frame: EvalFrame, outcome: FrameOutcome, dense_labels: np.ndarray | None = None,
            dense_ms: float | None = None, stream_reset: bool = False) -> dict[str, Any]:
        """Score one frame; returns (and keeps) its record."""
        labels = outcome.labels
        if labels.shape != frame.rgb.shape[:2]:
            raise ValueError(f"frame {frame.index}: labels of shape {labels.shape} for a "
                             f"{frame.rgb.shape[:2]} frame")
        mix = outcome.path_mix or (path_mix_from_map(outcome.path_map)
                                   if outcome.path_map is not None else {})
        mix = {p: float(mix.get(p, 0.0)) for p in PATHS}
        self.mixes.append(mix)
        self.sizes.add((labels.shape[1], labels.shape[0]))
        record: dict[str, Any] = {"index": frame.index, "stamp_ns": frame.stamp_ns,
                                  "name": frame.name, "received": True}
        if outcome.time_ms is not None:
            self.times_ms.append(outcome.time_ms)
            record["time_ms"] = outcome.time_ms
        if outcome.cache_mb is not None:
            self.cache_mb.append(outcome.cache_mb)
            record["cache_mb"] = outcome.cache_mb
        if outcome.latency_ms is not None:
            self.latencies_ms.append(outcome.latency_ms)
            record["latency_ms"] = outcome.latency_ms
        if dense_ms is not None:
            record["dense_time_ms"] = dense_ms
        record.update({f"path_{p}": mix[p] for p in PATHS})
        if frame.labels is not None:
            record["pixel_accuracy"] = self._score_labels(labels, frame.labels)
        if dense_labels is not None:
            record["agreement"] = self._score_fidelity(labels, dense_labels)
        record["stream_reset"] = stream_reset
        self.records.append(record)
        return record

    def add_missing(self, frame: EvalFrame) -> dict[str, Any]:
        """A frame that produced no output (live: dropped or lost)."""
        self.missing += 1
        record = {"index": frame.index, "stamp_ns": frame.stamp_ns, "name": frame.name,
                  "received": False}
        self.records.append(record)
        return record

    def _score_labels(self, pred: np.ndarray, target: np.ndarray) -> float | None:
        frame_matrix = ConfusionMatrix(len(self.class_names))
        frame_matrix.update(pred, target, self.ignore_index)
        self.accuracy.merge(frame_matrix)
        self.labelled_frames += 1
        accuracy = frame_matrix.pixel_accuracy()
        return None if math.isnan(accuracy) else _pct(accuracy)

    def _score_fidelity(self, pred: np.ndarray, dense: np.ndarray) -> float:
        if dense.shape != pred.shape:
            raise ValueError(f"dense labels {dense.shape} and labels {pred.shape} differ")
        self.fidelity.update(pred, dense)
        same = int(np.count_nonzero(pred == dense))
        self.agreeing += same
        self.compared += pred.size
        return _pct(same / pred.size)

    def accuracy_figures(self) -> dict[str, Any] | None:
        """mIoU, per-class IoU and accuracies against the ground truth (None: no labels)."""
        if self.labelled_frames == 0:
            return None
        m = self.accuracy
        return {
            "frames": self.labelled_frames,
            "miou": _pct(m.mean_iou()),
            "pixel_accuracy": _pct(m.pixel_accuracy()),
            "class_accuracy": _pct(m.mean_class_accuracy()),
            "unscored_predictions": _pct(m.unscored_share()),
            "iou_per_class": dict(zip(self.class_names, map(_pct, m.iou()), strict=True)),
            "accuracy_per_class": dict(zip(self.class_names, map(_pct, m.class_accuracy()),
                                           strict=True)),
        }

    def fidelity_figures(self, class_names: Sequence[str]) -> dict[str, Any] | None:
        """Pixel agreement and mIoU against the dense labels (None: no dense reference)."""
        if self.compared == 0:
            return None
        names = list(class_names)[: self.fidelity.num_classes]
        names += [str(i) for i in range(len(names), self.fidelity.num_classes)]
        return {
            "pixel_agreement": _pct(self.agreeing / self.compared),
            "miou": _pct(self.fidelity.mean_iou()),
            "iou_per_class": dict(zip(names, map(_pct, self.fidelity.iou()), strict=True)),
        }

    def cache_figures(self) -> dict[str, float] | None:
        """Mean and largest feature cache over the frames (MB; None: the engine keeps none)."""
        if not self.cache_mb:
            return None
        return {"mean": float(np.mean(self.cache_mb)), "max": float(np.max(self.cache_mb))}

    def path_mix(self) -> dict[str, float]:
        """Mean FULL / LOW / REUSE shares over the frames."""
        if not self.mixes:
            return dict.fromkeys(PATHS, 0.0)
        return {p: statistics.fmean(m[p] for m in self.mixes) for p in PATHS}

    def time_figures(self) -> dict[str, float | None]:
        """Engine time per frame: median, mean, p95, max (offline runs)."""
        stats = percentiles(self.times_ms)
        return {"median": stats["p50"], "mean": stats["mean"], "p95": stats["p95"],
                "max": stats["max"]}

    def image_size(self) -> list[int] | None:
        """[width, height] when every frame had the same size."""
        return list(next(iter(self.sizes))) if len(self.sizes) == 1 else None
