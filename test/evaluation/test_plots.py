"""Charts drawn with OpenCV: sizes, ticks, and that data shows up where it should."""

from __future__ import annotations

import numpy as np
from eval_cases import FakeEngine, tiny_source

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.evaluation import plots
from seg_accel_ros.evaluation.offline import run_offline
from seg_accel_ros.evaluation.outputs import SampleFrames


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert plots.nice_ticks(0, 100) == [0, 20, 40, 60, 80, 100]
    assert plots.nice_ticks(3, 7.2)[0] <= 3 and plots.nice_ticks(3, 7.2)[-1] >= 7.2
    assert plots.nice_ticks(5, 5) == [5, 6, 7, 8, 9, 10]  # an empty range still draws


def test_line_chart_draws_its_series_in_their_colour() -> None:
    series = [plots.Series("a", [0, 1, 2], [1.0, None, 3.0], (255, 0, 0), markers=True)]
    img = plots.line_chart(series, "t", "x", "y", size=(400, 200))
    assert img.shape == (200, 400, 3) and img.dtype == np.uint8
    assert (np.all(img == (255, 0, 0), axis=2)).sum() > 20


def test_time_path_mix_tradeoff_and_samples() -> None:
    samples = SampleFrames([0, 1])
    evaluation = run_offline(tiny_source(), [EngineConfig(mode="blocks")],
                             engine_factory=FakeEngine, sinks=[samples])
    records = evaluation.runs[0].scorer.records
    assert plots.timing_chart(records, live=False).shape == (340, 900, 3)
    mix = plots.path_mix_chart(records)
    full = np.array(plots.PATH_LAYERS[0][2], np.uint8)
    assert np.all(mix == full, axis=2).sum() > 100
    live_records = [{"index": 0, "received": True, "latency_ms": 40.0},
                    {"index": 1, "received": False}]
    assert plots.timing_chart(live_records, live=True).shape == (340, 900, 3)
    rows = [{"name": "full_fraction", "value": v, "speed_ratio": s, "miou": m}
            for v, s, m in ((0.1, 2.5, 50.0), (0.5, 1.4, 58.0))]
    assert plots.tradeoff_chart(rows, "miou", "mIoU %", 60.0).shape == (460, 760, 3)
    sheet = plots.samples_sheet(samples.samples, evaluation.palette, evaluation.class_names)
    assert sheet.shape[1] == 3 * 4 and sheet.shape[0] > 2 * 4
