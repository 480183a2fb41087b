"""seg_accel_train_policy on CamVid: trains, writes a loadable scorer, reports val mixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from seg_accel_ros.engine.learned_policy import LinearBlockScorer, file_sha256
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
