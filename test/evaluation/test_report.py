"""Report files: JSON with the expected keys, Markdown and HTML pages, per-frame records, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from eval_cases import EXPECTED, FakeEngine, tiny_source

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.outputs import SampleFrames
from seg_accel_ros.evaluation.report import build_report, format_summary, write_report_dir

TOP_LEVEL_KEYS = {
    "tool", "evaluation", "source", "dataset", "model", "weights", "device", "mode", "config",
    "frames", "frames_with_output", "image_size", "ignore_index", "units", "labelled_frames",
    "miou", "pixel_accuracy", "class_accuracy", "unscored_predictions", "iou_per_class",
    "accuracy_per_class", "time_ms", "latency_ms", "speed_ratio", "throughput_ratio",
    "fidelity", "dense",
    "path_mix", "stream_resets", "sweep", "live", "files"}


def _evaluate(sweep: bool = False):
    values = (0.1, 0.5) if sweep else (0.25,)
    configs = [EngineConfig(mode="blocks", full_fraction=v) for v in values]
    names = [f"full_fraction={v}" for v in values]
    samples = SampleFrames([0, 1])
    evaluation = run_offline(tiny_source(), configs, names, engine_factory=FakeEngine,
                             sinks=[samples])
    return evaluation, build_report(evaluation, "full_fraction" if sweep else None), samples


def test_report_folder_has_every_file_and_key(tmp_path: Path) -> None:
    evaluation, report, samples = _evaluate(sweep=True)
    files = write_report_dir(evaluation, report, tmp_path / "report", samples)
    for key in ("json", "markdown", "html", "records_jsonl", "records_csv", "plot_timing",
                "plot_path_mix", "plot_tradeoff", "plot_samples"):
        assert Path(files[key]).is_file(), key
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(data) >= TOP_LEVEL_KEYS
    assert set(data["latency_ms"]) >= {"p50", "p95", "max"}
    assert set(data["path_mix"]) == {"full", "low", "reuse"}
    assert set(data["fidelity"]) == {"pixel_agreement", "miou", "iou_per_class"}
    assert len(data["sweep"]["rows"]) == 2
    assert data["miou"] == pytest.approx(EXPECTED["miou"])

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Per-class IoU" in markdown and "![" in markdown and "plots/tradeoff.png" in markdown
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<img src='plots/samples.png'" in html
    assert f"{data['miou']:.2f}" in markdown and f"{data['miou']:.2f}" in html

    lines = (tmp_path / "report" / "frames.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4  # 2 frames x 2 sweep values, primary run first
    assert [r["run"] for r in records] == ["full_fraction=0.1"] * 2 + ["full_fraction=0.5"] * 2
    with (tmp_path / "report" / "frames.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[0]["agreement"] == "50.0"


def test_printed_summary_shows_the_json_figures() -> None:
    _, report, _ = _evaluate()
    text = format_summary(report)
    for value in (report["miou"], report["pixel_accuracy"], report["fidelity"]["miou"],
                  report["fidelity"]["pixel_agreement"]):
        assert f"{value:.2f}" in text
    assert f"{report['speed_ratio']:.2f}x" in text
    assert f"{report['throughput_ratio']:.2f}x" in text
    assert "37.5% / 62.5% / 0.0%" in text  # path mix FULL / LOW / REUSE
    assert "n/a" not in text.split("Per-class IoU")[0]


def test_report_without_labels_or_reference_leaves_them_out(tmp_path: Path) -> None:
    source = tiny_source()
    source.has_labels = False
    frames = [f.__class__(f.index, f.stamp_ns, f.time_ns, f.rgb, None, f.name)
              for f in source.frames()]
    source.open_frames = lambda: iter(frames)
    evaluation = run_offline(source, [EngineConfig(mode="blocks")], reference=False,
                             engine_factory=FakeEngine)
    report = build_report(evaluation)
    assert report["miou"] is None and report["labelled_frames"] == 0
    assert report["fidelity"] is None
    write_report_dir(evaluation, report, tmp_path)
    assert "Accuracy against the labels" not in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["iou_per_class"] is None
