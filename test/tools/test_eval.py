"""seg_accel_eval end to end on CamVid, a video, an image folder and a bag (offline and live),
and the full-split reference scores of the foreign networks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from seg_accel_ros import bags
from seg_accel_ros.datasets.camvid import CamVid
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.evaluation.evaluate import evaluate
from seg_accel_ros.frame_sources import generated_frames
from seg_accel_ros.models.classes import CAMVID_CLASSES
from seg_accel_ros.tools.eval import main

# Published / reference CamVid test scores (../shared/data/README.md), 233 frames.
REFERENCE = {
    "cgnet": ("cgnet_m3n21_camvid.pth", 65.5),
    "espnet": ("espnet_p2q8_camvid.pth", 57.2),
}


def _fake_camvid(root: Path, frames: int = 3, size: tuple[int, int] = (45, 61)) -> Path:
    """A tiny CamVid-layout test split (odd size on purpose) with random images and labels."""
    rng = np.random.default_rng(0)
    (root / "test").mkdir(parents=True)
    (root / "testannot").mkdir()
    for i in range(frames):
        name = f"Seq05VD_f{i:05d}.png"
        cv2.imwrite(str(root / "test" / name), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "testannot" / name), rng.integers(0, 12, size, dtype=np.uint8))
    return root


def _check_report(report: dict, frames: int, image_size: list[int]) -> None:
    assert report["frames"] == frames
    assert report["image_size"] == image_size
    assert list(report["iou_per_class"]) == list(CAMVID_CLASSES)
    ious = [v for v in report["iou_per_class"].values() if v is not None]
    assert math.isclose(report["miou"], sum(ious) / len(ious))
    for key in ("pixel_accuracy", "class_accuracy"):
        assert 0.0 <= report[key] <= 100.0
    assert report["time_ms"]["median"] > 0 and report["time_ms"]["mean"] > 0
    assert report["mode"] == "dense"


def test_cli_end_to_end_without_shared_data(tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    root = _fake_camvid(tmp_path / "camvid")
    out = tmp_path / "out" / "report.json"
    rc = main(["--dataset", "camvid", "--split", "test", "--data-root", str(root),
               "--model", "cgnet", "--json", str(out), "--quiet"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "no --weights given" in captured.err
    assert "mIoU" in captured.out
    report = json.loads(out.read_text())
    _check_report(report, frames=3, image_size=[61, 45])
    assert report["model"] == "cgnet"
    assert report["weights"] == "architecture default initialisation"


@pytest.mark.shared
def test_cli_end_to_end_on_five_camvid_frames(camvid_root: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    weights = shared_path("models", "cgnet_m3n21_camvid.pth")
    out = tmp_path / "cgnet.json"
    rc = main(["--dataset", "camvid", "--split", "test", "--data-root", str(camvid_root),
               "--model", "cgnet", "--weights", str(weights), "--limit", "5",
               "--device", "cpu", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    _check_report(report, frames=5, image_size=[480, 360])
    assert report["weights"] == str(weights)
    assert report["dataset"] == "camvid/test"
    assert f"{report['miou']:.2f}" in printed  # the printed figures are the JSON's
    assert report["miou"] > 50.0


def test_cli_rejects_bad_engine_settings(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--model", "cgnet", "--mode", "bogus"])
    assert exc.value.code == 2
    assert "mode must be one of" in capsys.readouterr().err
    for bad, reason in ((["--sweep", "nonsense=1,2"], "unknown engine setting"),
                        (["--sweep", "block_size=64,abc"], "takes a int"),
                        (["--sweep", "model=cgnet,espnet"], "cannot sweep model"),
                        (["--set", "full_fraction"], "FIELD=VALUE"),
                        (["--live", "--sweep", "full_fraction=0.1"], "offline runs"),
                        (["--mode", "temporal", "--set", "reuse_granularity=frame",
                          "--set", "pipelined=true"], "with --live"),
                        (["--rate", "2"], "--rate is the replay speed of --live"),
                        (["--live", "--rate", "0"], "--rate must be in (0, 100]"),
                        (["generated", "--split", "val"], "SOURCE generated is given")):
        with pytest.raises(SystemExit):
            main(bad)
        assert reason in capsys.readouterr().err, bad


def test_cli_reports_load_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _fake_camvid(tmp_path / "camvid", frames=1)
    assert main(["--data-root", str(root), "--model", "no_such_model"]) == 1
    assert "unknown model" in capsys.readouterr().err
    assert main(["--data-root", str(root), "--model", "cgnet",
                 "--weights", str(tmp_path / "missing.pth")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["--data-root", str(tmp_path / "nowhere"), "--model", "cgnet"]) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize("model", sorted(REFERENCE))
def test_full_test_split_reproduces_the_reference_miou(model: str, camvid_root: Path) -> None:
    file, expected = REFERENCE[model]
    engine = build_engine(EngineConfig(
        model=model, weights=str(shared_path("models", file))))
    report = evaluate(engine, CamVid("test", camvid_root), warmup=0)
    assert report.frames == 233
    assert report.miou == pytest.approx(expected, abs=0.3)


# ----------------------------------------------------------------------------- any input


def _tiny_video(path: Path, count: int = 3, size: tuple[int, int] = (128, 64)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    for rgb in generated_frames(size, count=count, speed=8):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


BLOCKS = ["--mode", "blocks", "--block-size", "64", "--quiet"]


def test_eval_on_a_video_writes_report_video_and_labels_bag(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture
                                                            ) -> None:
    clip = _tiny_video(tmp_path / "clip.mp4", size=(256, 128))
    out = tmp_path / "out"
    rc = main([str(clip), *BLOCKS, "--report", str(out), "--json", str(tmp_path / "r.json"),
               "--video", str(out / "overlay.mp4"), "--labels-bag", str(out / "labels"),
               "--records", str(tmp_path / "frames.csv")])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report == json.loads((out / "report.json").read_text())
    assert report["source"]["kind"] == "video" and report["frames"] == 3
    assert report["image_size"] == [256, 128] and report["miou"] is None
    assert report["path_mix"]["full"] == pytest.approx(0.25)  # 2 of the 4x2 blocks
    assert report["speed_ratio"] > 0 and 0 <= report["fidelity"]["pixel_agreement"] <= 100
    assert f"{report['fidelity']['miou']:.2f}" in printed
    for name in ("report.md", "report.html", "frames.jsonl", "plots/timing.png",
                 "plots/path_mix.png", "plots/samples.png"):
        assert (out / name).is_file(), name
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    with bags.BagReader(out / "labels") as bag:
        counts = {t.name: t.count for t in bag.topics}
        stamps = [t for _, t, _ in bag.messages(["/seg_accel_node/labels"])]
    assert counts == {"/seg_accel_node/labels": 3, "/seg_accel_node/labels_color": 3,
                      "/seg_accel_node/path_map": 3}
    assert stamps == [0, 100_000_000, 200_000_000]  # the video's frame times
    assert len((tmp_path / "frames.csv").read_text().splitlines()) == 4


def test_eval_on_an_image_folder_with_labels(tmp_path: Path) -> None:
    root = _fake_camvid(tmp_path / "camvid", frames=2, size=(64, 128))
    rc = main([str(root / "test"), *BLOCKS, "--json", str(tmp_path / "r.json")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["source"]["kind"] == "folder" and report["source"]["labels"]
    assert report["labelled_frames"] == 2 and report["miou"] is not None
    assert report["dense"]["miou"] is not None


def test_eval_on_a_bag_with_a_sweep(tmp_path: Path) -> None:
    frames = list(generated_frames((128, 64), count=3))
    stamps = [1_700_000_000_000_000_000 + i * 40_000_000 for i in range(3)]
    bags.write_frames(tmp_path / "drive", frames, stamps, encoding="jpeg")
    out = tmp_path / "sweep"
    rc = main([str(tmp_path / "drive"), *BLOCKS, "--sweep", "full_fraction=0.0,0.5,1.0",
               "--max-frames", "2", "--report", str(out), "--cpu-time"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["time_clock"] == "cpu"
    assert report["source"]["topic"] == "/camera/image_raw/compressed"
    rows = report["sweep"]["rows"]
    assert [r["value"] for r in rows] == [0.0, 0.5, 1.0]
    assert [r["path_mix"]["full"] for r in rows] == pytest.approx([0.0, 0.5, 1.0])
    assert rows[-1]["pixel_agreement"] == pytest.approx(100.0)  # all FULL is the dense net
    assert (out / "plots" / "tradeoff.png").is_file()
    assert len((out / "frames.jsonl").read_text().splitlines()) == 3 * 2


def test_eval_live_replays_a_compressed_bag_as_recorded(tmp_path: Path) -> None:
    pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")
    frames = list(generated_frames((128, 64), count=4))
    stamps = [1_700_000_000_000_000_000 + i * 250_000_000 for i in range(4)]
    bags.write_frames(tmp_path / "drive", frames, stamps, frame_id="cam", encoding="jpeg")
    out = tmp_path / "live"
    rc = main([str(tmp_path / "drive"), *BLOCKS, "--live", "--report", str(out),
               "--labels-bag", str(out / "labels")])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["evaluation"] == "live"
    live = report["live"]
    assert live["frames_published"] == 4
    assert live["input_msgtype"] == bags.COMPRESSED_TYPE  # the node decoded the JPEGs itself
    assert live["frames_with_labels"] + live["frames_without_labels"] == 4
    assert report["frames_with_output"] >= 1 and report["latency_ms"]["p50"] > 0
    assert report["fidelity"] is not None and report["speed_ratio"] is None
    with bags.BagReader(out / "labels") as bag:
        got = [msg.header for _, _, msg in bag.messages(["/seg_accel_node/labels"])]
    assert {h.stamp.sec * 10**9 + h.stamp.nanosec for h in got} <= set(stamps)
    assert all(h.frame_id == "cam" for h in got)


def test_eval_live_measures_the_pipelined_mode_through_the_node(tmp_path: Path) -> None:
    """Pipelined labels depend on when frames arrive, so only --live evaluates them; the
    report carries the node's count of frames its second thread segmented and label ages."""
    pytest.importorskip("rclpy", reason="rclpy is not installed (make setup installs it)")
    frames = list(generated_frames((256, 128), count=6))
    stamps = [1_700_000_000_000_000_000 + i * 200_000_000 for i in range(6)]
    bags.write_frames(tmp_path / "drive", frames, stamps, frame_id="cam", encoding="jpeg")
    rc = main([str(tmp_path / "drive"), "--mode", "temporal", "--block-size", "64", "--quiet",
               "--set", "reuse_granularity=frame", "--set", "pipelined=true",
               "--set", "max_reuse_frames=0", "--live", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"]["pipelined"] is True
    live = report["live"]
    assert live["frames_with_labels"] >= 3
    assert live["node_network_runs_pipelined"] >= 1  # frames 200 ms apart: time to finish
    assert live["node_label_age_max_frames"] >= 1


def test_eval_passes_any_engine_mode_through(tmp_path: Path) -> None:
    clip = _tiny_video(tmp_path / "clip.mp4", count=4, size=(256, 128))
    rc = main([str(clip), "--mode", "temporal", "--block-size", "64", "--quiet",
               "--json", str(tmp_path / "r.json")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "temporal" and report["config"]["mode"] == "temporal"
    assert sum(report["path_mix"].values()) == pytest.approx(1.0)
    assert report["fidelity"] is not None and report["speed_ratio"] > 0
    assert 0 < report["cache_mb"]["mean"] <= report["cache_mb"]["max"]  # temporal: its cache


PROJECT = Path(__file__).resolve().parents[2]


def test_eval_runs_the_engine_a_node_parameter_file_sets_up(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    """--params takes the file's engine parameters; options and --set win over them; the
    node-only ones are named as unused."""
    clip = _tiny_video(tmp_path / "clip.mp4", count=4, size=(256, 128))
    preset = PROJECT / "config" / "temporal_cpu.yaml"
    rc = main([str(clip), "--params", str(preset), "--block-size", "64",
               "--set", "max_reuse_frames=2", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    config = json.loads((tmp_path / "r.json").read_text())["config"]
    assert {k: config[k] for k in ("mode", "full_fraction", "reuse_granularity",
                                   "reuse_threshold", "motion_downscale")} == {
        "mode": "temporal", "full_fraction": 1.0, "reuse_granularity": "frame",
        "reuse_threshold": 8.0, "motion_downscale": 1}
    assert config["max_reuse_frames"] == 2 and config["block_size"] == 64
    assert "not used here" not in capsys.readouterr().err

    rc = main([str(clip), "--params", str(PROJECT / "config" / "seg_accel.yaml"),
               "--mode", "blocks", "--block-size", "64", "--json", str(tmp_path / "d.json")])
    assert rc == 0
    assert json.loads((tmp_path / "d.json").read_text())["config"]["mode"] == "blocks"
    assert "only the node reads these, not used here: allow_cpu_fallback" in (
        capsys.readouterr().err)


def test_eval_refuses_a_bad_parameter_file_before_running(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture
                                                          ) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    max_reuse_frame: 4\n")
    for path, reason in ((bad, "unknown parameter 'max_reuse_frame'"),
                         (tmp_path / "missing.yaml", "cannot read parameter file")):
        with pytest.raises(SystemExit) as exc:
            main(["--params", str(path)])
        assert exc.value.code == 2
        assert reason in capsys.readouterr().err
