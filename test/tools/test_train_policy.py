"""seg_accel_train_policy on CamVid: trains, writes a loadable scorer, reports val mixes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seg_accel_ros.engine.learned_policy import LinearBlockScorer, file_sha256, trained_scorer
from seg_accel_ros.models.registry import get_spec
from seg_accel_ros.tools.train_policy import main


def test_trains_a_scorer_for_the_network_it_ran(camvid_root: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "policy.json"
    assert main(["--data-root", str(camvid_root), "--subset", "4", "--threads", "1",
                 "--out", str(out)]) == 0
    scorer = LinearBlockScorer.load(out)
    assert scorer.model == "swiftnet_lite0"
    assert scorer.network_sha256 == file_sha256(get_spec("swiftnet_lite0").default_weights)
    text = capsys.readouterr().out
    for row in ("dense", "all LOW", "cheap signals", "learned scorer"):
        assert row in text


def test_a_scorer_for_ones_own_weights_is_saved_beside_them(camvid_root: Path,
                                                              tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    shutil.copyfile(get_spec("swiftnet_lite0").default_weights, weights)
    assert main(["--data-root", str(camvid_root), "--subset", "2", "--threads", "1",
                 "--weights", str(weights)]) == 0
    assert trained_scorer("swiftnet_lite0", weights) == LinearBlockScorer.load(
        tmp_path / "mine.policy.json")
