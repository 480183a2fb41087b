"""DenseEngine: the whole network on every frame; the baseline of every ratio."""

from __future__ import annotations

import numpy as np
import torch

from seg_accel_ros.engine.dense import DenseEngine
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.models.registry import create_model


def test_labels_are_the_argmax_of_the_logits_and_confidence_is_only_computed_on_request():
    model = create_model("swiftnet_lite0")
    image = np.random.default_rng(0).integers(0, 255, (90, 130, 3), np.uint8)
    plain = DenseEngine(model).process(image)
    with_conf = DenseEngine(model, confidence=True).process(image)
    logits = DenseEngine(model).logits(image)[:, :model.spec.num_classes]
    probs, expected = torch.softmax(logits, dim=1).max(dim=1)
    assert plain.labels.dtype == np.uint8 and plain.labels.shape == (90, 130)
    assert np.array_equal(plain.labels, expected[0].numpy())
    assert np.array_equal(with_conf.labels, plain.labels)
    assert plain.confidence is None
    np.testing.assert_allclose(with_conf.confidence, probs[0].numpy(), rtol=1e-5, atol=1e-6)
    assert (plain.path_map == BlockPath.FULL).all()
