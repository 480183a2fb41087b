"""``seg_accel_bench --suite temporal``: the temporal engine against the dense network, same
frames, one process (issue 5's figures).

Built on the offline evaluator (``evaluation/offline.py``): every frame goes through the dense
engine and through each temporal configuration in turn, so speed ratios are measured on the
same frames under the same machine load. Accuracy is mIoU against CamVid labels (the 15 Hz val
segment) and, on unlabelled video, fidelity to the dense network (pixel agreement, mIoU
against its labels). Besides the engine's defaults and the threshold curve, each source runs
the shipped CPU preset for its frame size (``config/temporal_cpu.yaml`` on the segment,
``config/temporal_cpu_720p.yaml`` on the highway clip), the settings that reach the goals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.report import run_figures
from seg_accel_ros.evaluation.sources import EvalSource, open_eval_source
from seg_accel_ros.models.registry import builds_untrained
from seg_accel_ros.ros.params_file import engine_settings, read_params_file, shipped_params_file

Clock = Callable[[], float]
HIGHWAY = Path("data") / "video" / "highway_1280x720_25fps.mp4"
PRESETS = {"camvid_15hz": "temporal_cpu.yaml", "highway_720p": "temporal_cpu_720p.yaml"}
PRESET_RUN = "cpu_preset"
# foreign networks' checkpoints in the shared folder (not packaged)
SHARED_CHECKPOINTS = {"cgnet": Path("models") / "cgnet_m3n21_camvid.pth",
                      "espnet": Path("models") / "espnet_p2q8_camvid.pth"}


def _source(spec: str, camvid_root: Path) -> EvalSource | None:
    try:
        return open_eval_source(spec, camvid_root=camvid_root)
    except FileNotFoundError:
        return None


def trained_weights(model: str, shared: Path) -> str | None:
    """What to measure ``model`` with: its packaged weights (''), else its checkpoint in the
    shared folder; None when it has neither (an untrained network's figures mean nothing)."""
    if not builds_untrained(model, ""):
        return ""
    checkpoint = SHARED_CHECKPOINTS.get(model)
    if checkpoint is not None and (shared / checkpoint).is_file():
        return str(shared / checkpoint)
    return None


def _compare(source: EvalSource, model: str, weights: str, block_size: int,
             variants: dict[str, dict], clock: Clock, max_frames: int | None = None) -> dict:
    """Dense and each temporal variant on ``source``'s frames: the dense figures and one
    figure set per variant."""
    configs = [EngineConfig(model=model, weights=weights, mode="temporal",
                            block_size=block_size, **kw) for kw in variants.values()]
    ev = run_offline(source, configs, list(variants), max_frames=max_frames, clock=clock)
    dense = run_figures(ev.reference, None, ev.class_names) if ev.reference else {}
    return {"dense": dense, **{r.name: run_figures(r, ev.reference, ev.class_names)
                               for r in ev.runs}}


def preset_settings(section: str, settings: dict) -> dict | None:
    """The engine settings of ``section``'s shipped CPU preset with ``settings`` (``--set``)
    over them; None when the file is not found."""
    path = shipped_params_file(PRESETS[section])
    if path is None:
        return None
    fields = engine_settings(read_params_file(path))
    suite_fields = ("model", "weights", "mode", "block_size")  # the suite's own choice
    return {**{k: v for k, v in fields.items() if k not in suite_fields}, **settings}


def _with_preset(variants: dict[str, dict], section: str, settings: dict) -> dict[str, dict]:
    preset = preset_settings(section, settings)
    return variants if preset is None else {**variants, PRESET_RUN: preset}


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
        weights = trained_weights(model, shared)
        if weights is None:
            where = shared / SHARED_CHECKPOINTS[model] if model in SHARED_CHECKPOINTS else None
            report[model] = {"skipped": f"no trained weights for {model}"
                                        + (f" (none at {where})" if where else "")}
            continue
        section: dict = {}
        if camvid is not None:
            variants = _with_preset({"default": dict(settings)}, "camvid_15hz", settings)
            variants.update({f"threshold_{t:g}": {**settings, "reuse_threshold": t}
                             for t in thresholds})
            runs = _compare(camvid, model, weights, block_size, variants, clock)
            dense, default = runs.pop("dense"), runs.pop("default")
            section["camvid_15hz"] = {"dense": dense, "temporal": default}
            if PRESET_RUN in runs:
                section["camvid_15hz"][PRESET_RUN] = runs.pop(PRESET_RUN)
            section["camvid_15hz"]["curve"] = runs
            if _miou(dense) is not None and _miou(default) is not None:
                section["camvid_15hz"]["miou_drop"] = _miou(dense) - _miou(default)
        if highway is not None:
            runs = _compare(highway, model, weights, block_size,
                            _with_preset({"default": dict(settings)}, "highway_720p", settings),
                            clock, highway_frames)
            target_ms = round(runs["dense"]["time_ms"]["median"] / 2, 1)
            controlled = _compare(highway, model, weights, block_size,
                                  {"target": {**settings, "target_latency_ms": target_ms}},
                                  clock, highway_frames)["target"]
            p50 = controlled["time_ms"]["median"]
            controlled.update(target_ms=target_ms, p50_error=abs(p50 - target_ms) / target_ms)
            section["highway_720p"] = {"dense": runs.pop("dense"),
                                       "temporal": runs.pop("default"), **runs,
                                       "latency_target": controlled}
        report[model] = section
    return report


def _run_row(name: str, row: dict, dense_miou: float | None) -> str:
    """One run as a line: both speed ratios, accuracy (or fidelity) and the path mix."""
    mix = row["path_mix"]
    line = (f"  {name:>14}: x{row['speed_ratio']:.2f} median  "
            f"x{row['throughput_ratio']:.2f} throughput")
    miou = _miou(row)
    if miou is not None:
        drop = f" ({miou - dense_miou:+.2f})" if dense_miou is not None else ""
        line += f"  mIoU {miou:.2f}{drop}"
    fidelity = row.get("fidelity") or {}
    if fidelity.get("pixel_agreement") is not None:
        line += f"  agreement {fidelity['pixel_agreement']:.2f}%"
    return line + f"  FULL/LOW/REUSE {mix['full']:.2f}/{mix['low']:.2f}/{mix['reuse']:.2f}"


def summary_rows(report: dict) -> list[str]:
    """Every figure of the suite as printable lines: per network and source, dense, the
    engine's defaults, the CPU preset, the threshold curve and the latency target."""
    lines = []
    for model, section in report.items():
        if not isinstance(section, dict) or model == "settings":
            continue
        if "skipped" in section:
            lines.append(f"{model}: skipped, {section['skipped']}")
            continue
        camvid = section.get("camvid_15hz")
        if camvid:
            dense = camvid["dense"]
            lines.append(f"{model}, CamVid 15 Hz segment ({dense['frames']} frames): dense "
                         f"{_miou(dense):.2f} mIoU, {dense['time_ms']['median']:.1f} ms")
            runs = {"default": camvid["temporal"], **({PRESET_RUN: camvid[PRESET_RUN]}
                                                       if PRESET_RUN in camvid else {}),
                    **camvid["curve"]}
            lines += [_run_row(name, row, _miou(dense)) for name, row in runs.items()]
        highway = section.get("highway_720p")
        if highway:
            dense = highway["dense"]
            lines.append(f"{model}, highway clip ({dense['frames']} frames): dense "
                         f"{dense['time_ms']['median']:.1f} ms")
            lines += [_run_row(name, highway[key], None) for name, key in
                      (("default", "temporal"), (PRESET_RUN, PRESET_RUN)) if key in highway]
            target = highway["latency_target"]
            lines.append(f"  latency target {target['target_ms']:.1f} ms: p50 "
                         f"{target['time_ms']['median']:.1f} ms "
                         f"({100 * target['p50_error']:.1f}% off)")
            lines.append(_run_row("target", target, None))
    return lines
