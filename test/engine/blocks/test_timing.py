"""The blocks benchmark's timing (``seg_accel_bench --suite blocks``): both stages time both
engines on the same input in one run and report per-fraction ratios."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_accel_ros.engine.blocks.timing import op_times, time_ratios
from seg_accel_ros.tools.bench import main as bench_main


def _frame(height: int = 128, width: int = 192) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize("stage", ["labels", "logits"])
def test_each_stage_reports_a_ratio_per_fraction(stage: str) -> None:
    image = _frame() if stage == "labels" else None
    curve = time_ratios(size=(128, 192), fractions=(0.0, 0.5), repeats=1, warmup=0,
                        stage=stage, image=image)
    assert set(curve) == {0.0, 0.5}
    for row in curve.values():
        assert row["dense_s"] > 0 and row["block_s"] > 0
        assert row["ratio"] == pytest.approx(row["block_s"] / row["dense_s"])


def test_labels_stage_takes_the_size_of_its_frame() -> None:
    curve = time_ratios(size=(720, 1280), fractions=(1.0,), repeats=1, warmup=0,
                        stage="labels", image=_frame(64, 128))
    assert curve[1.0]["block_s"] > 0


def test_bad_stage_or_missing_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        time_ratios(stage="features")
    with pytest.raises(ValueError, match="needs an image"):
        time_ratios(stage="labels")
    with pytest.raises(ValueError, match="runs on the CPU in float32"):
        time_ratios(stage="labels", image=_frame(), dtype=torch.float16)


def test_bench_blocks_suite_on_generated_frame(tmp_path, capsys) -> None:
    out = tmp_path / "blocks.json"
    assert bench_main(["--suite", "blocks", "--size", "192x128", "--fractions", "0.5",
                       "--repeats", "1", "--source", "generated", "--json", str(out)]) == 0
    report = out.read_text()
    assert '"stage": "labels"' in report and '"frame": "generated"' in report
    assert '"allocator": "node settings"' in report
    assert "ratio_full_0.5" in capsys.readouterr().out


def test_op_times_put_the_convolutions_of_both_engines_on_the_same_frame() -> None:
    times = op_times(size=(128, 192), fraction=1.0, rounds=1)
    assert set(times) == {"dense", "blocks"}
    for ops in times.values():
        assert any("conv" in op for op in ops)
        assert all(ms >= 0 for ms in ops.values())
    # forced through the block code, the all-FULL frame writes halos; dense never does
    assert "aten::index_copy_" in times["blocks"]
    assert "aten::index_copy_" not in times["dense"]


def test_logits_stage_times_the_network_in_half_precision(tmp_path) -> None:
    """``--precision fp16`` (the GPU curve's setting) runs the plain network and the block
    engine in float16; here on the CPU, where only the plumbing is checked."""
    from seg_accel_ros.engine.blocks.timing import timed_model

    assert next(timed_model("swiftnet_lite0", "cpu", torch.float16).module.parameters()
                ).dtype == torch.float16
    out = tmp_path / "blocks.json"
    assert bench_main(["--suite", "blocks", "--stage", "logits", "--precision", "fp16",
                       "--size", "256x128", "--fractions", "0.5", "--repeats", "1",
                       "--json", str(out)]) == 0
    report = out.read_text()
    assert '"precision": "fp16"' in report and '"device": "cpu"' in report


@pytest.mark.parametrize("argv, message", [
    (["--stage", "logits", "--device", "cuda:0"], "CUDA is not available"),
    (["--precision", "fp16"], "add --stage logits"),
    (["--stage", "logits", "--precision", "fp16", "--cpu-time"], "leave out --cpu-time"),
])
def test_gpu_and_half_precision_options_are_refused_with_a_reason(argv, message) -> None:
    if torch.cuda.is_available() and "cuda:0" in argv:
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match=message):
        bench_main(["--suite", "blocks", "--size", "256x128", "--fractions", "0.5",
                    "--repeats", "1", *argv])
