"""``seg_accel_bench --suite temporal``: the temporal engine against the dense network, same
frames, one process (issue 5's figures).

Built on the offline evaluator (``evaluation/offline.py``): every frame goes through the dense
engine and through each temporal configuration in turn, so speed ratios are measured on the
same frames under the same machine load. Accuracy is mIoU against CamVid labels (the 15 Hz val
segment) and, on unlabelled video, fidelity to the dense network (pixel agreement, mIoU
against its labels).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.report import run_figures
from seg_accel_ros.evaluation.sources import EvalSource, open_eval_source

Clock = Callable[[], float]
HIGHWAY = Path("data") / "video" / "highway_1280x720_25fps.mp4"


def _source(spec: str, camvid_root: Path) -> EvalSource | None:
    try:
        return open_eval_source(spec, camvid_root=camvid_root)
    except FileNotFoundError:
        return None


def _compare(source: EvalSource, model: str, block_size: int, variants: dict[str, dict],
             clock: Clock, max_frames: int | None = None) -> dict:
    """Dense and each temporal variant on ``source``'s frames: the dense figures and one
    figure set per variant."""
    configs = [EngineConfig(model=model, mode="temporal", block_size=block_size, **kw)
               for kw in variants.values()]
    ev = run_offline(source, configs, list(variants), max_frames=max_frames, clock=clock)
    dense = run_figures(ev.reference, None, ev.class_names) if ev.reference else {}
    return {"dense": dense, **{r.name: run_figures(r, ev.reference, ev.class_names)
                               for r in ev.runs}}


def _miou(figures: dict) -> float | None:
    return (figures.get("accuracy") or {}).get("miou")


def run_temporal_bench(models: Sequence[str], shared: Path, block_size: int, clock: Clock,
                       thresholds: Sequence[float], highway_frames: int,
                       settings: dict | None = None) -> dict:
    """Every figure of issue 5 for ``models``; sections whose data is absent are skipped."""
    settings = settings or {}
    report: dict = {"suite": "temporal", "block_size": block_size,
                    "threads": torch.get_num_threads(), "settings": settings}
    camvid = _source("camvid:temporal", shared / "data" / "camvid")
    highway = _source(str(shared / HIGHWAY), shared / "data" / "camvid")
    if camvid is None and highway is None:
        report["skipped"] = f"no CamVid segment or highway clip under {shared}"
        return report
    for model in models:
        section: dict = {}
        if camvid is not None:
            variants = {"default": dict(settings)}
            variants.update({f"threshold_{t:g}": {**settings, "reuse_threshold": t}
                             for t in thresholds})
            runs = _compare(camvid, model, block_size, variants, clock)
            dense, default = runs.pop("dense"), runs.pop("default")
            section["camvid_15hz"] = {"dense": dense, "temporal": default, "curve": runs}
            if _miou(dense) is not None and _miou(default) is not None:
                section["camvid_15hz"]["miou_drop"] = _miou(dense) - _miou(default)
        if highway is not None:
            runs = _compare(highway, model, block_size, {"default": dict(settings)}, clock,
                            highway_frames)
            target_ms = round(runs["dense"]["time_ms"]["median"] / 2, 1)
            controlled = _compare(highway, model, block_size,
                                  {"target": {**settings, "target_latency_ms": target_ms}},
                                  clock, highway_frames)["target"]
            p50 = controlled["time_ms"]["median"]
            controlled.update(target_ms=target_ms, p50_error=abs(p50 - target_ms) / target_ms)
            section["highway_720p"] = {"dense": runs["dense"], "temporal": runs["default"],
                                       "latency_target": controlled}
        report[model] = section
    return report


def curve_rows(report: dict) -> list[str]:
    """The trade-off curve as printable lines."""
    lines = []
    for model, section in report.items():
        if not isinstance(section, dict) or "camvid_15hz" not in section:
            continue
        lines.append(f"{model}: reuse_threshold -> speed ratio (median, mean times), mIoU, "
                     "FULL/LOW/REUSE")
        for name, row in section["camvid_15hz"]["curve"].items():
            mix = row["path_mix"]
            lines.append(f"  {name:>14}: x{row['speed_ratio']:.2f}  "
                         f"x{row['throughput_ratio']:.2f}  mIoU {_miou(row)}  "
                         f"{mix['full']:.2f}/{mix['low']:.2f}/{mix['reuse']:.2f}")
    return lines


