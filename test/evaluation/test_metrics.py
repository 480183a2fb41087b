"""ConfusionMatrix: hand-made cases with known answers, and accumulation over a split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seg_accel_ros.evaluation.metrics import ConfusionMatrix


def test_perfect_prediction_scores_one() -> None:
    target = np.array([[0, 1, 2], [2, 1, 0]])
    cm = ConfusionMatrix(3)
    cm.update(target.copy(), target)
    assert np.allclose(cm.iou(), 1.0)
    assert cm.mean_iou() == 1.0
    assert cm.pixel_accuracy() == 1.0
    assert cm.mean_class_accuracy() == 1.0


def test_disjoint_prediction_scores_zero() -> None:
    target = np.array([0, 0, 1, 1])
    pred = np.array([1, 1, 0, 0])
    cm = ConfusionMatrix(2)
    cm.update(pred, target)
    assert np.array_equal(cm.iou(), [0.0, 0.0])
    assert cm.mean_iou() == 0.0
    assert cm.pixel_accuracy() == 0.0
    assert cm.mean_class_accuracy() == 0.0


def test_hand_computed_partial_overlap() -> None:
    # class 0: tp 2, fp 1, fn 1 -> IoU 2/4; class 1: tp 1, fp 1, fn 1 -> IoU 1/3
    target = np.array([0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 0, 1])
    cm = ConfusionMatrix(2)
    cm.update(pred, target)
    assert np.allclose(cm.iou(), [0.5, 1 / 3])
    assert math.isclose(cm.mean_iou(), (0.5 + 1 / 3) / 2)
    assert math.isclose(cm.pixel_accuracy(), 3 / 5)
    assert np.allclose(cm.class_accuracy(), [2 / 3, 1 / 2])


def test_ignored_pixels_do_not_count_whatever_is_predicted() -> None:
    target = np.array([0, 1, 11, 11])
    pred = np.array([0, 1, 0, 1])  # wrong "predictions" on ignored pixels
    cm = ConfusionMatrix(2)
    cm.update(pred, target, ignore_index=11)
    assert cm.total == 2
    assert np.allclose(cm.iou(), 1.0)
    assert cm.pixel_accuracy() == 1.0


def test_class_absent_from_both_sides_is_nan_and_excluded_from_mean() -> None:
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 0])
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    iou = cm.iou()
    assert math.isnan(iou[2])
    assert math.isclose(cm.mean_iou(), (iou[0] + iou[1]) / 2)
    assert math.isnan(cm.class_accuracy()[2])
    assert math.isclose(cm.mean_class_accuracy(), (1.0 + 0.5) / 2)


def test_class_only_predicted_counts_as_zero_iou() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 2]), np.array([0, 0]))
    assert cm.iou()[2] == 0.0
    assert math.isnan(cm.iou()[1])
    assert math.isclose(cm.mean_iou(), (0.5 + 0.0) / 2)
    assert math.isnan(cm.class_accuracy()[2])  # no ground truth: accuracy undefined


def test_prediction_outside_classes_is_a_miss_and_no_false_positive() -> None:
    # label 11 predicted (a network's "Unlabelled" output) on pixels of class 0
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 11, 1, 1]), np.array([0, 0, 1, 1]))
    assert np.allclose(cm.iou(), [0.5, 1.0])
    assert np.allclose(cm.class_accuracy(), [0.5, 1.0])
    assert math.isclose(cm.pixel_accuracy(), 3 / 4)
    assert math.isclose(cm.unscored_share(), 1 / 4)


def test_split_accumulation_is_not_a_mean_of_per_image_scores() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 0]))  # image 1: class 0 perfect
    cm.update(np.array([1, 1, 1, 1]), np.array([0, 1, 1, 1]))  # image 2: one miss
    # class 0 over the split: tp 4, fn 1 -> 0.8 (mean of per-image IoUs would be 0.5)
    assert np.allclose(cm.iou(), [4 / 5, 3 / 4])


def test_nothing_counted_gives_nan() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([1]), np.array([11]), ignore_index=11)
    assert cm.total == 0
    assert math.isnan(cm.mean_iou())
    assert math.isnan(cm.pixel_accuracy())


def test_accepts_torch_tensors_and_reset() -> None:
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([[0, 1]], dtype=torch.uint8), torch.tensor([[0, 1]]))
    assert cm.total == 2
    cm.reset()
    assert cm.total == 0


def test_rejects_bad_input() -> None:
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2), np.int64), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="target labels"):
        cm.update(np.zeros(2, np.int64), np.array([0, 5]))
    with pytest.raises(TypeError):
        cm.update(np.zeros(2, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        ConfusionMatrix(0)


labels = arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 4))


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_chunked_updates_equal_one_update(data: st.DataObject) -> None:
    target = data.draw(labels)
    pred = data.draw(arrays(np.int64, target.shape, elements=st.integers(0, 5)))
    whole = ConfusionMatrix(4)
    whole.update(pred, target, ignore_index=4)
    cut = data.draw(st.integers(0, target.size))
    parts, other = ConfusionMatrix(4), ConfusionMatrix(4)
    parts.update(pred[:cut], target[:cut], ignore_index=4)
    other.update(pred[cut:], target[cut:], ignore_index=4)
    parts.merge(other)
    assert np.array_equal(parts.counts, whole.counts)
    assert whole.total == int((target != 4).sum())
    iou = whole.iou()
    assert np.all(np.isnan(iou) | ((iou >= 0) & (iou <= 1)))
