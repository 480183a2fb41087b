"""The evaluation report: one JSON-ready dict, and the same figures as text, Markdown and HTML.

:func:`build_report` turns an :class:`~seg_accel_ros.evaluation.offline.Evaluation` into the
dict that ``--json`` writes; :func:`report_tables` lays every figure of that dict out as tables,
from which the printed summary, ``report.md`` and ``report.html`` are rendered, so what is
printed is always what the JSON holds. :func:`write_report_dir` writes the whole folder: the
pages, the per-frame records (JSON lines and CSV) and the plots.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seg_accel_ros.evaluation import plots
from seg_accel_ros.evaluation.offline import Evaluation, RunResult
from seg_accel_ros.evaluation.outputs import SampleFrames
from seg_accel_ros.evaluation.scoring import PATHS, percentiles

_CLOCKS = {"wall": "wall time", "cpu": "process CPU time"}
RECORD_FIELDS = ("run", "index", "name", "stamp_ns", "received", "time_ms", "dense_time_ms",
                 "latency_ms", "path_full", "path_low", "path_reuse", "pixel_accuracy",
                 "agreement", "stream_reset")


def run_figures(run: RunResult, reference: RunResult | None, class_names: Sequence[str],
                live: bool = False) -> dict[str, Any]:
    """Every figure of one run: accuracy, fidelity, time, speed ratio, latency, path mix."""
    s = run.scorer
    time_ms = s.time_figures()
    dense_times = reference.scorer.time_figures() if reference else {}
    ratio, throughput = (None if live or not dense_times.get(k) or not time_ms[k]
                         else dense_times[k] / time_ms[k] for k in ("median", "mean"))
    latency = percentiles(s.latencies_ms if live else s.times_ms)
    return {
        "name": run.name,
        "config": asdict(run.config),
        **run.model,
        "frames": s.frames,
        "accuracy": s.accuracy_figures(),
        "fidelity": s.fidelity_figures(class_names),
        "time_ms": time_ms,
        "speed_ratio": ratio,
        # mean times: frames per second against dense (schedules that alternate cheap and
        # full frames have a median that is one of the two, not their rate)
        "throughput_ratio": throughput,
        "latency_ms": {k: latency[k] for k in ("p50", "p95", "max")},
        "path_mix": s.path_mix(),
        "cache_mb": s.cache_figures(),
    }


def build_report(evaluation: Evaluation, sweep_name: str | None = None) -> dict[str, Any]:
    """The JSON-ready report; the first run is the primary one (top-level figures)."""
    live = evaluation.kind == "live"
    names = evaluation.class_names
    runs = [run_figures(r, evaluation.reference, names, live) for r in evaluation.runs]
    main, ref = runs[0], evaluation.reference
    accuracy = main["accuracy"] or {}
    dense = None
    if ref is not None:
        ref_acc = ref.scorer.accuracy_figures() or {}
        dense = {"time_ms": ref.scorer.time_figures(), "miou": ref_acc.get("miou"),
                 "pixel_accuracy": ref_acc.get("pixel_accuracy"),
                 "iou_per_class": ref_acc.get("iou_per_class")}
    report: dict[str, Any] = {
        "tool": "seg_accel_eval",
        "evaluation": evaluation.kind,
        "source": evaluation.source.to_dict(),
        "dataset": evaluation.source.description,
        "model": main["model"], "weights": main["weights"], "device": main["device"],
        "mode": main["config"]["mode"], "config": main["config"],
        "frames": len(evaluation.runs[0].scorer.records),
        "frames_with_output": main["frames"],
        "image_size": evaluation.runs[0].scorer.image_size(),
        "ignore_index": evaluation.source.ignore_index,
        "units": {"scores": "percent", "time": "ms per frame", "path_mix": "share (0..1)"},
        "labelled_frames": accuracy.get("frames", 0),
        **{k: accuracy.get(k) for k in ("miou", "pixel_accuracy", "class_accuracy",
                                        "unscored_predictions", "iou_per_class",
                                        "accuracy_per_class")},
        "time_ms": main["time_ms"],
        "time_clock": evaluation.clock,
        "latency_ms": {**main["latency_ms"], "measured": (
            "input received by a subscriber -> labels received, through the node over DDS"
            if live else f"engine {_CLOCKS[evaluation.clock]} per frame (offline)")},
        "speed_ratio": main["speed_ratio"],
        "throughput_ratio": main["throughput_ratio"],
        "fidelity": main["fidelity"],
        "dense": dense,
        "path_mix": main["path_mix"],
        "cache_mb": main["cache_mb"],
        "stream_resets": evaluation.stream_resets,
        "sweep": None,
        "live": evaluation.live or None,
    }
    if sweep_name is not None:
        report["sweep"] = {"name": sweep_name, "rows": [_sweep_row(sweep_name, r) for r in runs]}
    return report


def _sweep_row(name: str, run: dict[str, Any]) -> dict[str, Any]:
    accuracy, fidelity = run["accuracy"] or {}, run["fidelity"] or {}
    return {"name": name, "value": run["config"][name], "speed_ratio": run["speed_ratio"],
            "throughput_ratio": run["throughput_ratio"],
            "time_ms_median": run["time_ms"]["median"], "time_ms_p95": run["time_ms"]["p95"],
            "miou": accuracy.get("miou"),
            "fidelity_miou": fidelity.get("miou"),
            "pixel_agreement": fidelity.get("pixel_agreement"), "path_mix": run["path_mix"],
            "cache_mb_max": (run["cache_mb"] or {}).get("max")}


# ----------------------------------------------------------------------------- tables


@dataclass
class Table:
    """A titled table; a two-column table without header reads as 'name  value' lines."""

    title: str
    rows: list[list[str]]
    header: list[str] | None = None
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A figure for people: floats rounded, None/NaN as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _mix(mix: dict[str, float]) -> str:
    return " / ".join(f"{100 * mix.get(p, 0.0):.1f}%" for p in PATHS)


def _settings(config: dict[str, Any]) -> str:
    """The engine settings that matter for the mode ('-' for dense)."""
    if config["mode"] == "dense":
        return "-"
    skip = ("model", "weights", "device", "mode", "half_precision", "num_threads")
    return ", ".join(f"{k}={v}" for k, v in config.items() if k not in skip)


def report_tables(report: dict[str, Any]) -> list[Table]:
    """Every figure of the report as tables (the summary, Markdown and HTML show these)."""
    src, cfg = report["source"], report["config"]
    size = "x".join(map(str, report["image_size"])) if report["image_size"] else "mixed"
    tables = [Table("Run", [
        ["evaluation", report["evaluation"]],
        ["source", f"{report['dataset']} [{src['kind']}]"],
        ["frames", f"{report['frames']} ({report['frames_with_output']} with output), {size}"],
        ["timing", src["timing"]],
        ["model", f"{report['model']} (weights: {report['weights']})"],
        ["engine", f"{report['mode']} on {report['device']}"],
        ["settings", _settings(cfg)],
        ["stream resets", str(report["stream_resets"])],
    ])]
    t, lat, dense = report["time_ms"], report["latency_ms"], report["dense"]
    speed = [["latency p50 / p95 / max", f"{fmt(lat['p50'], 1)} / {fmt(lat['p95'], 1)} / "
                                         f"{fmt(lat['max'], 1)} ms"],
             ["latency measured", lat["measured"]]]
    if t["median"] is not None:
        speed.insert(0, ["engine time median / mean / p95 / max",
                         f"{fmt(t['median'], 1)} / {fmt(t['mean'], 1)} / {fmt(t['p95'], 1)} / "
                         f"{fmt(t['max'], 1)} ms"])
    if dense is not None and dense["time_ms"]["median"] is not None:
        speed.append(["dense time median", f"{fmt(dense['time_ms']['median'], 1)} ms"])
    if report["evaluation"] == "offline":
        speed.append(["speed ratio vs dense (same run)", fmt(report["speed_ratio"], 2, "x")])
        speed.append(["throughput vs dense (mean times)",
                      fmt(report.get("throughput_ratio"), 2, "x")])
    speed.append(["path mix FULL / LOW / REUSE", _mix(report["path_mix"])])
    if report.get("cache_mb"):
        speed.append(["feature cache mean / max", f"{fmt(report['cache_mb']['mean'], 0)} / "
                                                  f"{fmt(report['cache_mb']['max'], 0)} MB"])
    tables.append(Table("Speed and path mix", speed))
    tables += _accuracy_tables(report)
    if report["live"]:
        tables.append(Table("Live run (node over DDS)",
                            [[k, fmt(v)] for k, v in report["live"].items()]))
    if report["sweep"]:
        tables.append(_sweep_table(report["sweep"]))
    return tables


def _accuracy_tables(report: dict[str, Any]) -> list[Table]:
    tables = []
    dense, fid = report["dense"], report["fidelity"]
    labelled = bool(report["labelled_frames"])
    if labelled:
        rows = [["labelled frames", str(report["labelled_frames"])],
                ["mIoU", fmt(report["miou"], unit=" %")],
                ["pixel accuracy", fmt(report["pixel_accuracy"], unit=" %")],
                ["class accuracy", fmt(report["class_accuracy"], unit=" %")],
                ["predicted outside the scored classes",
                 fmt(report["unscored_predictions"], unit=" %")]]
        if dense is not None:
            rows.append(["dense mIoU (same frames)", fmt(dense["miou"], unit=" %")])
        tables.append(Table("Accuracy against the labels", rows))
    if fid is not None:
        tables.append(Table("Fidelity against the dense network (same frames)", [
            ["pixel agreement", fmt(fid["pixel_agreement"], unit=" %")],
            ["mIoU against dense labels", fmt(fid["miou"], unit=" %")]]))
    if labelled or fid is not None:
        tables.append(_per_class_table(report))
    return tables


def _per_class_table(report: dict[str, Any]) -> Table:
    """Per-class IoU and accuracy against labels, dense IoU, IoU against dense labels."""
    dense, fid = report["dense"], report["fidelity"]
    labelled = bool(report["labelled_frames"])
    names = list(report["iou_per_class"] if labelled else fid["iou_per_class"])
    header = ["class"]
    columns: list[dict[str, Any]] = []
    if labelled:
        header += ["IoU %", "acc %"]
        columns += [report["iou_per_class"], report["accuracy_per_class"]]
        if dense is not None:
            header.append("dense IoU %")
            columns.append(dense["iou_per_class"] or {})
    if fid is not None:
        header.append("IoU vs dense %")
        columns.append(fid["iou_per_class"])
    rows = [[name, *(fmt(c.get(name)) for c in columns)] for name in names]
    return Table("Per-class IoU", rows, header)


def _sweep_table(sweep: dict[str, Any]) -> Table:
    rows = [[str(r["value"]), fmt(r["speed_ratio"], 2, "x"),
             fmt(r.get("throughput_ratio"), 2, "x"), fmt(r["time_ms_median"], 1),
             fmt(r.get("time_ms_p95"), 1), fmt(r["miou"]), fmt(r["fidelity_miou"]),
             fmt(r["pixel_agreement"]),
             _mix(r["path_mix"]), fmt(r.get("cache_mb_max"), 0)] for r in sweep["rows"]]
    return Table(f"Sweep of {sweep['name']}", rows,
                 [sweep["name"], "speed vs dense", "throughput", "time ms", "p95 ms", "mIoU %",
                  "mIoU vs dense %", "agreement %", "FULL / LOW / REUSE", "cache max MB"])


def render_text(tables: Sequence[Table]) -> str:
    """Aligned plain-text tables for the terminal."""
    out: list[str] = []
    for table in tables:
        if not table.rows:
            continue
        out += [table.title, "-" * len(table.title)]
        rows = ([table.header] if table.header else []) + table.rows
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
        for row in rows:
            cells = [c.ljust(w) if i == 0 else c.rjust(w) if table.header else c
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            out.append("  ".join(cells).rstrip())
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_markdown(tables: Sequence[Table], title: str) -> str:
    """A Markdown page of the tables and their images."""
    out = [f"# {title}", ""]
    for table in tables:
        out += [f"## {table.title}", ""]
        if table.rows:
            header = table.header or ["", ""]
            out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                    for row in table.rows]
            out.append("")
        for path, caption in table.images:
            out += [f"![{caption}]({path})", ""]
    return "\n".join(out)


def render_html(tables: Sequence[Table], title: str) -> str:
    """A self-contained HTML page (images referenced beside it)."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1600px}"
             "table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%;border:1px solid #ddd;margin:4px 0}</style></head><body>",
             f"<h1>{esc(title)}</h1>"]
    for table in tables:
        parts.append(f"<h2>{esc(table.title)}</h2>")
        if table.rows:
            parts.append("<table>")
            if table.header:
                parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in table.header)
                             + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                      for row in table.rows]
            parts.append("</table>")
        parts += [f"<figure><img src='{esc(p)}' alt='{esc(c)}'><figcaption>{esc(c)}"
                  "</figcaption></figure>" for p, c in table.images]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def format_summary(report: dict[str, Any]) -> str:
    """The printed summary: every figure of the report, as text."""
    return render_text(report_tables(report))


# ----------------------------------------------------------------------------- files


def frame_records(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Per-frame records of every run, primary run first, each with its run name."""
    return [{"run": run.name, **record} for run in evaluation.runs
            for record in run.scorer.records]


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def write_json(path: str | Path, report: dict[str, Any]) -> Path:
    """The report as one JSON object."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    return path


def write_records(path: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """JSON lines (``.jsonl``) or CSV (``.csv``) of per-frame records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, RECORD_FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
    else:
        path.write_text("".join(json.dumps(json_ready(r), allow_nan=False) + "\n"
                                for r in records))
    return path


def write_plots(evaluation: Evaluation, report: dict[str, Any], folder: Path,
                samples: SampleFrames | None) -> dict[str, Path]:
    """timing.png, path_mix.png, tradeoff.png (sweeps) and samples.png (when kept)."""
    records = evaluation.runs[0].scorer.records
    live = evaluation.kind == "live"
    out = {"timing": plots.save_png(folder / "timing.png", plots.timing_chart(records, live)),
           "path_mix": plots.save_png(folder / "path_mix.png", plots.path_mix_chart(records))}
    sweep = report["sweep"]
    if sweep:
        labelled = any(r["miou"] is not None for r in sweep["rows"])
        key, label = ("miou", "mIoU vs labels %") if labelled else (
            "fidelity_miou", "mIoU vs dense labels %")
        reference = (report["dense"] or {}).get("miou") if labelled else 100.0
        out["tradeoff"] = plots.save_png(folder / "tradeoff.png", plots.tradeoff_chart(
            sweep["rows"], key, label, reference))
    if samples is not None and samples.samples:
        out["samples"] = plots.save_png(folder / "samples.png", plots.samples_sheet(
            samples.samples, evaluation.palette, evaluation.class_names))
    return out


IMAGE_CAPTIONS = {
    "timing": "Per-frame time (offline) or latency (live)",
    "path_mix": "Per-frame path mix (FULL / LOW / REUSE)",
    "tradeoff": "Speed / accuracy trade-off of the sweep",
    "samples": "Sample frames: input | labels over the input | path map",
}


def write_report_dir(evaluation: Evaluation, report: dict[str, Any], folder: str | Path,
                     samples: SampleFrames | None = None) -> dict[str, str]:
    """Write report.json/.md/.html, frames.jsonl/.csv and plots/ under ``folder``.

    Adds the written paths to ``report['files']`` and returns them.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = frame_records(evaluation)
    files = {"json": folder / "report.json", "markdown": folder / "report.md",
             "html": folder / "report.html",
             "records_jsonl": write_records(folder / "frames.jsonl", records),
             "records_csv": write_records(folder / "frames.csv", records)}
    pictures = write_plots(evaluation, report, folder / "plots", samples)
    files.update({f"plot_{k}": v for k, v in pictures.items()})
    report.setdefault("files", {}).update({k: str(v) for k, v in files.items()})
    tables = report_tables(report)
    tables.append(Table("Pictures", [], images=[
        (str(p.relative_to(folder)), IMAGE_CAPTIONS[k]) for k, p in pictures.items()]))
    title = f"seg_accel_eval: {report['model']} {report['mode']} on {report['dataset']}"
    files["markdown"].write_text(render_markdown(tables, title))
    files["html"].write_text(render_html(tables, title))
    write_json(files["json"], report)
    return report["files"]
