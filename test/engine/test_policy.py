"""ComplexityPolicy: textured blocks, class boundaries and uncertain blocks run FULL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_accel_ros.engine.policy import ComplexityConfig, ComplexityPolicy, block_means
from seg_accel_ros.engine.result import BlockPath

FULL, LOW = int(BlockPath.FULL), int(BlockPath.LOW)


def flat_image(h: int = 256, w: int = 384) -> np.ndarray:
    return np.full((h, w, 3), 100, np.uint8)


def test_block_means_average_only_the_pixels_inside_the_image():
    values = np.ones((5, 7), np.float32)
    values[:, 4:] = 3.0
    means = block_means(values, (2, 2), 4)
    np.testing.assert_allclose(means, [[1.0, 3.0], [1.0, 3.0]])


def test_the_textured_block_is_chosen():
    image = flat_image()
    rng = np.random.default_rng(0)
    image[128:256, 256:384] = rng.integers(0, 255, (128, 128, 3))
    policy = ComplexityPolicy(ComplexityConfig(full_fraction=1 / 6), block_size=128)
    paths = policy(image, (2, 3))
    assert paths.tolist() == [[LOW, LOW, LOW], [LOW, LOW, FULL]]


def test_previous_boundaries_and_uncertainty_count():
    image = flat_image()
    labels = np.zeros((256, 384), np.uint8)
    labels[:, 64:] = 3  # a class boundary inside block (0, 0) and (1, 0)
    confidence = np.ones((256, 384), np.float32)
    confidence[128:, 256:] = 0.2  # unsure in block (1, 2)
    policy = ComplexityPolicy(ComplexityConfig(full_fraction=0.5), block_size=128)
    paths = policy(image, (2, 3), labels, confidence)
    assert paths[0, 0] == FULL and paths[1, 0] == FULL and paths[1, 2] == FULL
    assert (paths == FULL).sum() == 3


def test_fraction_and_threshold_modes():
    scores = np.array([[0.5, 2.0], [1.0, 0.5]])
    assert ComplexityPolicy(ComplexityConfig(full_fraction=0.0)).assign(scores).max() == LOW
    assert (ComplexityPolicy(ComplexityConfig(full_fraction=1.0)).assign(scores) == FULL).all()
    by_threshold = ComplexityPolicy(ComplexityConfig(threshold=0.9)).assign(scores)
    assert by_threshold.tolist() == [[LOW, FULL], [FULL, LOW]]


def test_a_flat_frame_scores_zero_everywhere_and_partial_blocks_work():
    policy = ComplexityPolicy(block_size=64)
    scores = policy.scores(flat_image(200, 300), (4, 5))
    assert scores.shape == (4, 5) and not scores.any()


@pytest.mark.parametrize("kwargs", [
    {"full_fraction": 1.5}, {"full_fraction": -0.1}, {"threshold": math.nan},
    {"gradient_weight": -1.0}, {"gradient_weight": 0.0, "boundary_weight": 0.0,
                                "uncertainty_weight": 0.0}, {"downscale": 0},
])
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ValueError):
        ComplexityConfig(**kwargs)


def test_the_engine_computes_confidence_only_for_a_policy_that_reads_it():
    from seg_accel_ros.engine.adaptive import AdaptiveBlockEngine
    from seg_accel_ros.engine.learned_policy import FEATURES, LinearBlockScorer
    from seg_accel_ros.models.registry import create_model

    assert ComplexityPolicy().needs_confidence
    assert not ComplexityPolicy(ComplexityConfig(uncertainty_weight=0.0)).needs_confidence
    scorer = LinearBlockScorer((0.0,) * len(FEATURES), 0.0)
    assert not ComplexityPolicy(scorer=scorer).needs_confidence
    model = create_model("swiftnet_lite0")
    image = np.random.default_rng(0).integers(0, 255, (128, 256, 3), np.uint8)
    cheap = AdaptiveBlockEngine(model, ComplexityPolicy()).process(image)
    assert cheap.confidence is not None and cheap.confidence.shape == (128, 256)
    blind = AdaptiveBlockEngine(model, ComplexityPolicy(ComplexityConfig(uncertainty_weight=0)))
    assert blind.process(image).confidence is None
