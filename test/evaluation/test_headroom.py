"""Headroom: the ceilings any REUSE / LOW / block policy is held to, on hand-made cases and a
real network."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from seg_accel_ros.engine.factory import inference_model
from seg_accel_ros.evaluation.headroom import (
    PolicyBound,
    block_sums,
    measure_headroom,
    mix_blocks,
    top_blocks,
)
from seg_accel_ros.evaluation.sources import EvalFrame, EvalSource
from seg_accel_ros.tools import headroom as cli


def test_block_sums_count_partial_blocks_by_what_they_hold() -> None:
    sums = block_sums(np.ones((5, 7)), 4)
    assert sums.tolist() == [[16, 12], [4, 3]]


def test_top_blocks_and_mix() -> None:
    chosen = top_blocks(np.array([[1.0, 3.0], [3.0, 0.0]]), 2)
    assert chosen.tolist() == [[False, True], [True, False]]  # ties in raster order
    full, low = np.ones((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    mixed = mix_blocks(full, low, chosen, 2)
    assert mixed[:2, 2:].all() and mixed[2:, :2].all() and not mixed[:2, :2].any()


def _two_blocks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left block: FULL right, LOW wrong on one pixel. Right block: both right, but they
    disagree on its two ignored pixels, so imitating FULL prefers it."""
    truth = np.zeros((2, 4), np.uint8)
    truth[:, 2:] = 1
    truth[0, 2:] = 255
    full = truth.copy()
    full[0, 2:] = 0
    low = truth.copy()
    low[0, 0] = 1
    low[0, 2:] = 1
    return full, low, truth


def test_the_ground_truth_oracle_picks_the_block_full_gets_right() -> None:
    full, low, truth = _two_blocks()
    bound = PolicyBound(2, 2, 0.5, ignore_index=255)
    bound.add(full, low, truth)
    miou = bound.miou()
    assert miou["dense"] == pytest.approx(1.0)
    assert miou["oracle_ground_truth"] == pytest.approx(1.0)
    assert miou["oracle_imitation"] == pytest.approx(miou["all_low"])  # the wrong block
    assert miou["all_low"] < 1.0


@pytest.mark.parametrize("fraction, same_as", [(0.0, "all_low"), (1.0, "dense")])
def test_oracles_reduce_to_single_paths_at_the_ends(fraction: float, same_as: str) -> None:
    full, low, truth = _two_blocks()
    bound = PolicyBound(2, 2, fraction, ignore_index=255)
    bound.add(full, low, truth)
    miou = bound.miou()
    assert miou["oracle_imitation"] == pytest.approx(miou[same_as])
    assert miou["oracle_ground_truth"] == pytest.approx(miou[same_as])


def test_full_fraction_is_validated() -> None:
    with pytest.raises(ValueError, match="full_fraction"):
        PolicyBound(2, 8, 1.5)


def _still_source(frames: int = 3) -> EvalSource:
    """The same real-looking frame repeated: the network cannot flicker on it."""
    rng = np.random.default_rng(2)
    image = np.kron(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.ones((8, 8, 1),
                                                                             np.uint8))
    truth = np.zeros(image.shape[:2], np.uint8)

    def gen() -> Iterator[EvalFrame]:
        for i in range(frames):
            yield EvalFrame(i, i * 10**8, i * 10**8, image.copy(), truth, f"still{i}")

    return EvalSource("folder", "still", gen, frames, 10.0, True, "10 Hz")


def test_a_still_video_has_a_perfect_reuse_ceiling_on_the_real_network() -> None:
    model = inference_model("swiftnet_lite0")
    report = measure_headroom(_still_source(), model, block_size=32, full_fraction=0.25)
    assert report["frames"] == 3
    assert report["reuse_ceiling"]["pairs"] == 2
    assert report["reuse_ceiling"]["agreement"] == 1.0
    assert 0.0 < report["low_ceiling"]["agreement"] <= 1.0
    miou = report["policy_bound"]["miou"]
    assert set(miou) == {"dense", "all_low", "oracle_imitation", "oracle_ground_truth"}
    assert miou["oracle_ground_truth"] >= miou["all_low"] - 1e-12


def test_cli_prints_the_ceilings_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "headroom.json"
    rc = cli.main(["generated", "--max-frames", "3", "--block-size", "32", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "REUSE ceiling" in printed and "LOW ceiling" in printed
    assert "schedule bound" in printed
    assert "policy bound" not in printed  # generated frames have no labels
    report = json.loads(out.read_text())
    assert report["frames"] == 3 and report["reuse_ceiling"]["pairs"] == 2
    assert report["schedule_bound"]["frames"] == 3


def test_cli_warns_that_a_network_without_weights_is_untrained(capsys) -> None:
    assert cli.main(["generated", "--model", "espnet", "--max-frames", "2",
                     "--block-size", "32"]) == 0
    assert "model espnet has no trained weights" in capsys.readouterr().err


def test_cli_refuses_a_missing_source(capsys) -> None:
    assert cli.main(["/nonexistent/clip.mp4"]) == 2
    assert "no bag, video file or image folder" in capsys.readouterr().err
