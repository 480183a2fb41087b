"""seg_accel_tune end to end: every swept value beside the dense network on the same frames,
the fastest that keeps the goal written as a parameter file the node reads, nothing written
when none keeps it, and bad options refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.evaluation.tuning import FRAME_REUSE
from seg_accel_ros.frame_sources import generated_frames
from seg_accel_ros.ros.params_file import read_params_file
from seg_accel_ros.tools.tune import main

SMALL = ["generated", "--max-frames", "10", "--resize", "256x160", "--quiet"]


def _rows(report: dict) -> dict:
    return {row["value"]: row for row in report["sweep"]["rows"]}


def test_the_fastest_value_keeping_the_goal_is_written_as_a_node_parameter_file(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, js = tmp_path / "cfg" / "tuned.yaml", tmp_path / "tune.json"
    rc = main([*SMALL, "--sweep", "max_reuse_frames=1,4", "--min-agreement", "50",
               "--out", str(out), "--json", str(js)])
    assert rc == 0
    report = json.loads(js.read_text())
    rows = _rows(report)
    assert set(rows) == {1, 4} and report["dense"]["time_ms"]["mean"] > 0
    chosen = report["tune"]["chosen"]
    assert rows[chosen]["throughput_ratio"] == max(r["throughput_ratio"] for r in rows.values())
    assert all(r["pixel_agreement"] >= 50 for r in rows.values())
    values = read_params_file(out)
    # started from the shipped preset for small frames (motion on the frame itself)
    assert values == {"model": "swiftnet_lite0", **FRAME_REUSE, "reuse_threshold": 8.0,
                      "max_reuse_frames": chosen, "motion_downscale": 1}
    text = out.read_text()
    assert f"with max_reuse_frames: {chosen}," in text
    assert f"{rows[chosen]['throughput_ratio']:.2f}x the dense throughput" in text
    assert "# Command: seg_accel_tune generated --max-frames 10" in text
    printed = capsys.readouterr().out
    assert "(chosen)" in printed and f"params_file:={out.resolve()}" in printed
    assert ("the last value swept keeps the goal" in printed) == (chosen == 4)
    assert report["tune"]["file"] == str(out)


def test_nothing_is_written_when_no_value_keeps_the_goal(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tuned.yaml"
    rc = main([*SMALL, "--sweep", "max_reuse_frames=3", "--set", "reuse_threshold=1000",
               "--min-agreement", "100", "--out", str(out)])
    assert rc == 1 and not out.exists()
    printed = capsys.readouterr().out
    assert "no: agreement" in printed and "nothing written" in printed


def _labelled_folder(root: Path, frames: int = 8) -> Path:
    """Generated street frames labelled by the dense network itself (its mIoU is then 100)."""
    dense = build_engine(EngineConfig(mode="dense"))
    (root / "img").mkdir(parents=True)
    (root / "lab").mkdir()
    for i, rgb in enumerate(generated_frames((256, 160), frames, speed=6)):
        name = f"f{i:03d}.png"
        cv2.imwrite(str(root / "img" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "lab" / name), dense.process(rgb).labels)
    return root


def test_with_labels_the_miou_below_dense_is_part_of_the_goal(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    root = _labelled_folder(tmp_path / "clip")
    js, out = tmp_path / "tune.json", tmp_path / "tuned.yaml"
    common = [str(root / "img"), "--labels", str(root / "lab"), "--quiet",
              "--sweep", "max_reuse_frames=0,3", "--min-agreement", "0", "--json", str(js),
              "--out", str(out)]
    assert main([*common, "--max-miou-drop", "100"]) == 0
    report = json.loads(js.read_text())
    assert report["dense"]["miou"] == pytest.approx(100.0)
    rows = _rows(report)
    assert rows[0]["miou"] == pytest.approx(100.0)  # every frame computed
    assert rows[3]["miou"] < 100.0  # moved labels
    assert "mIoU" in out.read_text()
    drop = 100.0 - rows[3]["miou"]
    rc = main([*common, "--max-miou-drop", f"{drop / 2:.6f}"])
    assert rc == 0 and json.loads(js.read_text())["tune"]["chosen"] == 0
    assert "mIoU at most" in capsys.readouterr().out


def test_a_starting_file_keeps_its_other_values_and_its_engine_mode_is_replaced(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = tmp_path / "front.yaml"
    base.write_text("/**:\n  ros__parameters:\n    mode: blocks\n    qos_depth: 3\n"
                    "    reuse_threshold: 6.0\n    motion_downscale: 2\n    num_threads: 1\n")
    out, js = tmp_path / "tuned.yaml", tmp_path / "tune.json"
    rc = main(["generated", "--max-frames", "6", "--resize", "256x160", "--params", str(base),
               "--sweep", "max_reuse_frames=2", "--min-agreement", "0", "--threads", "2",
               "--out", str(out), "--json", str(js)])
    assert rc == 0
    assert read_params_file(out) == {"model": "swiftnet_lite0", "qos_depth": 3,
                                     "reuse_threshold": 6.0, "motion_downscale": 2,
                                     "num_threads": 1, **FRAME_REUSE, "max_reuse_frames": 2}
    assert json.loads(js.read_text())["config"]["num_threads"] == 2  # --threads: measuring only
    assert "mode: blocks replaced" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "reason"), [
    (["--set", "mode=blocks"], "seg_accel_tune sets mode=temporal"),
    (["--set", "max_reuse_frames=3"], "--set max_reuse_frames"),
    (["--sweep", "full_fraction=0.5,1"], "full_fraction is 1.0 in the family"),
    (["--sweep", "model=cgnet"], "cannot sweep model"),
    (["--sweep", "max_reuse_frames=many"], "max_reuse_frames takes a int"),
    (["--min-agreement", "120"], "--min-agreement is a percentage"),
    (["--max-miou-drop", "-1"], "--max-miou-drop must be >= 0"),
    (["--max-frames", "0"], "--max-frames must be >= 1"),
])
def test_bad_options_are_refused_before_anything_runs(args, reason, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["generated", *args, "--out", str(tmp_path / "t.yaml")])
    assert exit_.value.code == 2
    assert reason in capsys.readouterr().err
    assert not (tmp_path / "t.yaml").exists()


def test_an_input_that_cannot_be_opened_is_a_one_line_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture
                                                           ) -> None:
    assert main([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "t.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("seg_accel_tune: error:") and "missing.mp4" in err


def test_pipelined_settings_are_refused_with_the_reason(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    rc = main(["generated", "--max-frames", "4", "--set", "pipelined=true",
               "--out", str(tmp_path / "t.yaml")])
    assert rc == 1 and not (tmp_path / "t.yaml").exists()
    assert "pipelined: which labels a frame gets depends on when it arrives" in (
        capsys.readouterr().err)
