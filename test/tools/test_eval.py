"""seg_accel_eval end to end, and the full-split reference scores of the foreign networks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from seg_accel_ros.datasets.camvid import CamVid
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.evaluation.evaluate import evaluate
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


def test_cli_rejects_unavailable_mode(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--model", "cgnet", "--mode", "temporal"])
    assert exc.value.code == 2
    assert "not available yet" in capsys.readouterr().err


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
