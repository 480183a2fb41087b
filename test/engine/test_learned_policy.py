"""The learned FULL/LOW block scorer: features, target, fit, bundling, use by the policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.engine.learned_policy import (
    FEATURES,
    LinearBlockScorer,
    block_features,
    block_gain,
    file_sha256,
    fit_scorer,
    scorer_path,
    sidecar_scorer_path,
    trained_scorer,
)
from seg_accel_ros.engine.policy import ComplexityPolicy
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.models.registry import get_spec


def _image(h: int = 360, w: int = 480, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), np.uint8)


def test_features_one_row_per_block_with_positions() -> None:
    feats = block_features(_image(), (3, 4), 128)
    assert feats.shape == (12, len(FEATURES)) and np.isfinite(feats).all()
    row = feats[:, FEATURES.index("row")].reshape(3, 4)
    np.testing.assert_allclose(row[:, 0], [64 / 360, 192 / 360, 320 / 360], rtol=1e-6)
    off = feats[:, FEATURES.index("off_centre")].reshape(3, 4)
    np.testing.assert_allclose(off[0], np.abs(np.array([64, 192, 320, 448]) / 480 - 0.5),
                               rtol=1e-6)


def test_detail_is_what_halving_the_resolution_loses() -> None:
    """A flat block loses nothing at half resolution; a fine checkerboard loses most."""
    image = np.full((256, 256, 3), 128, np.uint8)
    image[:128, :128] = (np.indices((128, 128)).sum(0) % 2 * 255)[..., None]
    detail = block_features(image, (2, 2), 128)[:, FEATURES.index("detail_level")]
    assert detail[0] > 5.0 and detail[1:].max() < 1e-3


def test_block_gain_counts_pixels_only_full_gets_right() -> None:
    truth = np.zeros((4, 4), np.int64)
    truth[0, 0] = 11  # ignored
    full = np.zeros((4, 4), np.int64)
    low = np.ones((4, 4), np.int64)
    low[2:, 2:] = 0  # both right in the last block
    gain = block_gain(full, low, truth, 2, ignore_index=11)
    np.testing.assert_allclose(gain, [[3 / 4, 1.0], [1.0, 0.0]])


def test_fit_recovers_a_linear_rule_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, len(FEATURES))).astype(np.float32)
    true_w = np.linspace(-0.5, 0.5, len(FEATURES))
    scorer = fit_scorer(x, x @ true_w + 0.2, ridge=1e-6, model="m", network_sha256="ab")
    np.testing.assert_allclose(scorer.weights, true_w, atol=1e-4)
    assert scorer.bias == pytest.approx(0.2, abs=1e-4)
    scorer.save(tmp_path / "s.json")
    assert LinearBlockScorer.load(tmp_path / "s.json") == scorer
    data = json.loads((tmp_path / "s.json").read_text())
    data["features"] = data["features"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="other features"):
        LinearBlockScorer.load(tmp_path / "bad.json")


def test_policy_ranks_blocks_by_predicted_gain() -> None:
    """A scorer that only values low rows sends the bottom row FULL."""
    weights = tuple(1.0 if f == "row" else 0.0 for f in FEATURES)
    policy = ComplexityPolicy(block_size=128, scorer=LinearBlockScorer(weights, 0.0))
    scores = policy.scores(_image(), (3, 4))
    assert scores.mean() == pytest.approx(1.0) and (scores > 0).all()
    policy.config = type(policy.config)(full_fraction=4 / 12)
    paths = policy(_image(), (3, 4))
    assert (paths[2] == int(BlockPath.FULL)).all() and (paths[:2] == int(BlockPath.LOW)).all()


def test_trained_scorer_only_for_the_weights_it_was_trained_for(tmp_path: Path) -> None:
    default = get_spec("swiftnet_lite0").default_weights
    assert scorer_path("swiftnet_lite0").is_file()
    scorer = trained_scorer("swiftnet_lite0", default)
    assert scorer is not None and scorer.network_sha256 == file_sha256(default)
    other = tmp_path / "other.pt"
    other.write_bytes(b"not the trained weights")
    assert trained_scorer("swiftnet_lite0", other) is None
    assert trained_scorer("swiftnet_lite0", None) is None
    assert trained_scorer("no_such_model", default) is None


@pytest.mark.parametrize("run", ["run3", "run4"])
def test_the_other_bundled_weights_find_their_own_scorer_beside_them(run: str) -> None:
    other = get_spec("swiftnet_lite0").default_weights.with_name(f"swiftnet_lite0_camvid_{run}.pt")
    scorer = trained_scorer("swiftnet_lite0", other)
    assert scorer is not None and scorer.network_sha256 == file_sha256(other)
    assert scorer != trained_scorer("swiftnet_lite0", get_spec("swiftnet_lite0").default_weights)


def test_a_scorer_beside_ones_own_weights_is_found_for_them_only(tmp_path: Path,
                                                                   caplog) -> None:
    weights = tmp_path / "run" / "export.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"fine-tuned weights")
    assert sidecar_scorer_path(weights) == tmp_path / "run" / "export.policy.json"
    assert trained_scorer("cgnet", weights) is None  # nothing trained for them yet
    mine = LinearBlockScorer(tuple(range(len(FEATURES))), 0.5, "cgnet", file_sha256(weights))
    mine.save(sidecar_scorer_path(weights))
    assert trained_scorer("cgnet", weights) == mine
    assert trained_scorer("espnet", weights) is None  # trained for another network
    weights.write_bytes(b"weights changed after the scorer was trained")
    assert trained_scorer("cgnet", weights) is None
    sidecar_scorer_path(weights).write_text("{not json")
    assert trained_scorer("cgnet", weights) is None
    assert "skipped" in caplog.text


def test_blocks_engine_uses_the_learned_scorer_unless_told_otherwise() -> None:
    learned = build_engine(EngineConfig(mode="blocks"))
    assert learned.policy.scorer is not None
    cheap = build_engine(EngineConfig(mode="blocks", block_policy="complexity"))
    assert cheap.policy.scorer is None
    temporal = build_engine(EngineConfig(mode="temporal"))
    assert temporal.complexity.scorer is not None
    with pytest.raises(ValueError, match="block_policy"):
        EngineConfig(block_policy="oracle")
