"""``seg_accel_bench --suite temporal``: the temporal engine against the dense network, same
frames, one process (issue 5's figures).

Every frame goes through the dense engine and through each temporal configuration in turn, so
speed ratios are measured on the same frames under the same machine load. Accuracy is mIoU
against CamVid labels (the 15 Hz val segment) and, on unlabelled video, fidelity to the dense
network (pixel agreement and mIoU against its labels).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.factory import Engine, build_engine
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX
from seg_accel_ros.models.registry import create_model

Clock = Callable[[], float]
HIGHWAY = Path("data") / "video" / "highway_1280x720_25fps.mp4"


@dataclass
class Track:
    """What one engine did over the frames."""

    times: list[float] = field(default_factory=list)
    mixes: list[dict[str, float]] = field(default_factory=list)
    vs_labels: ConfusionMatrix | None = None
    vs_dense: ConfusionMatrix | None = None
    agree: int = 0
    pixels: int = 0

    def summary(self, dense: Track | None) -> dict:
        t = np.asarray(self.times)
        out: dict = {"median_ms": 1e3 * float(np.median(t)), "mean_ms": 1e3 * float(t.mean()),
                     "p95_ms": 1e3 * float(np.percentile(t, 95))}
        if dense is not None:
            d = np.asarray(dense.times)
            out["speed_ratio"] = float(np.median(d) / np.median(t))
            out["throughput_ratio"] = float(d.mean() / t.mean())
            out["pixel_agreement"] = self.agree / max(1, self.pixels)
            assert self.vs_dense is not None
            out["miou_vs_dense"] = 100 * self.vs_dense.mean_iou()
        if self.vs_labels is not None:
            out["miou"] = 100 * self.vs_labels.mean_iou()
        if self.mixes:
            out["path_mix"] = {k: float(np.mean([m[k] for m in self.mixes]))
                               for k in self.mixes[0]}
        return out


def compare(frames: Iterable[tuple[np.ndarray, np.ndarray | None]], dense: Engine,
            engines: dict[str, Engine], num_classes: int, clock: Clock = time.perf_counter
            ) -> tuple[Track, dict[str, Track]]:
    """Run every frame through ``dense`` and each of ``engines``; score against the labels
    (when given) and against the dense labels."""
    dense_track = Track()
    tracks = {name: Track() for name in engines}
    for rgb, labels in frames:
        t0 = clock()
        ref = dense.process(rgb)
        dense_track.times.append(clock() - t0)
        if labels is not None:
            dense_track.vs_labels = dense_track.vs_labels or ConfusionMatrix(num_classes)
            dense_track.vs_labels.update(ref.labels, labels, CAMVID_IGNORE_INDEX)
        for name, engine in engines.items():
            tr = tracks[name]
            t0 = clock()
            out = engine.process(rgb)
            tr.times.append(clock() - t0)
            tr.mixes.append(out.path_mix)
            if labels is not None:
                tr.vs_labels = tr.vs_labels or ConfusionMatrix(num_classes)
                tr.vs_labels.update(out.labels, labels, CAMVID_IGNORE_INDEX)
            tr.vs_dense = tr.vs_dense or ConfusionMatrix(num_classes)
            tr.vs_dense.update(out.labels, ref.labels)
            tr.agree += int((out.labels == ref.labels).sum())
            tr.pixels += out.labels.size
    return dense_track, tracks


def camvid_frames(root: Path | None) -> list[tuple[np.ndarray, np.ndarray]] | None:
    from seg_accel_ros.datasets.camvid import CamVid

    try:
        seq = CamVid.temporal_segment(root)
    except FileNotFoundError:
        return None
    return [seq[i] for i in range(len(seq))] or None


def video_clip(path: Path, count: int) -> list[tuple[np.ndarray, None]] | None:
    from seg_accel_ros.frame_sources import video_frames

    if not path.is_file():
        return None
    frames = []
    for rgb in video_frames(path):
        frames.append((rgb, None))
        if len(frames) >= count:
            break
    return frames


def _engines(model: str, block_size: int, variants: dict[str, dict]) -> dict[str, Engine]:
    return {name: build_engine(EngineConfig(model=model, mode="temporal", block_size=block_size,
                                            **kw))
            for name, kw in variants.items()}


def _warm(engines: Sequence[Engine], rgb: np.ndarray) -> None:
    for e in engines:
        e.process(rgb)
        e.reset()


def run_temporal_bench(models: Sequence[str], shared: Path, block_size: int, clock: Clock,
                       thresholds: Sequence[float], highway_frames: int,
                       settings: dict | None = None) -> dict:
    """Every figure of issue 5 for ``models``; sections whose data is absent are skipped."""
    settings = settings or {}
    report: dict = {"suite": "temporal", "block_size": block_size,
                    "threads": torch.get_num_threads(), "settings": settings}
    camvid = camvid_frames(shared / "data" / "camvid" if shared else None)
    highway = video_clip(shared / HIGHWAY, highway_frames) if shared else None
    if camvid is None and highway is None:
        report["skipped"] = f"no CamVid segment or highway clip under {shared}"
        return report
    for model in models:
        loaded = create_model(model, None, torch.device("cpu"))
        dense = DenseEngine(loaded)
        k = loaded.spec.num_classes
        section: dict = {}
        if camvid is not None:
            variants = {f"threshold_{t:g}": {**settings, "reuse_threshold": t}
                        for t in thresholds}
            variants["default"] = dict(settings)
            engines = _engines(model, block_size, variants)
            _warm([dense, *engines.values()], camvid[0][0])
            d, tracks = compare(camvid, dense, engines, k, clock)
            section["camvid_15hz"] = {"frames": len(camvid), "size": list(camvid[0][0].shape[:2]),
                                      "dense": d.summary(None),
                                      "temporal": tracks.pop("default").summary(d),
                                      "curve": {n: t.summary(d) for n, t in tracks.items()}}
            section["camvid_15hz"]["miou_drop"] = (section["camvid_15hz"]["dense"]["miou"]
                                                   - section["camvid_15hz"]["temporal"]["miou"])
        if highway is not None:
            engines = _engines(model, block_size, {"default": dict(settings)})
            _warm([dense, *engines.values()], highway[0][0])
            d, tracks = compare(highway, dense, engines, k, clock)
            dense_ms = d.summary(None)["median_ms"]
            target = {**settings, "target_latency_ms": round(dense_ms / 2, 1)}
            controlled = _engines(model, block_size, {"target": target})["target"]
            _warm([controlled], highway[0][0])
            _, ctl = compare(highway, dense, {"target": controlled}, k, clock)
            c = ctl["target"].summary(d)
            c["target_ms"] = target["target_latency_ms"]
            c["p50_error"] = abs(c["median_ms"] - c["target_ms"]) / c["target_ms"]
            section["highway_720p"] = {"frames": len(highway), "dense": d.summary(None),
                                       "temporal": tracks["default"].summary(d),
                                       "latency_target": c}
        report[model] = section
    return report


def curve_rows(report: dict) -> list[str]:
    """The trade-off curve as printable lines."""
    lines = []
    for model, section in report.items():
        if not isinstance(section, dict) or "camvid_15hz" not in section:
            continue
        lines.append(f"{model}: reuse_threshold -> speed ratio, mIoU, FULL/LOW/REUSE")
        for name, row in section["camvid_15hz"]["curve"].items():
            mix = row["path_mix"]
            lines.append(f"  {name:>14}: x{row['speed_ratio']:.2f}  mIoU {row['miou']:.2f}  "
                         f"{mix['full']:.2f}/{mix['low']:.2f}/{mix['reuse']:.2f}")
    return lines
