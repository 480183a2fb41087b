"""Per-pixel labels and confidence from logits (engine/result.py)."""

import pytest
import torch

from seg_accel_ros.engine.result import (
    REDUCE_CHUNK,
    PixelReduction,
    labels_and_confidence,
    pixel_labels,
)


def _reference(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    conf, labels = torch.softmax(logits.float(), dim=1).max(dim=1)
    return labels, conf


@pytest.mark.parametrize("shape", [(1, 11, 3 * REDUCE_CHUNK // (11 * 200) + 5, 200),
                                   (4, 5, 17, 9), (1, 1, 4, 4), (2, 3, 0, 5)])
@pytest.mark.parametrize("layout", ["planar", "channels_last", "half"])
def test_labels_are_the_argmax_and_confidence_the_max_softmax_probability(shape, layout):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g) * 4
    if layout == "channels_last":
        logits = logits.contiguous(memory_format=torch.channels_last)
    elif layout == "half":
        logits = logits.half()
    labels, conf = labels_and_confidence(logits)
    ref_labels, ref_conf = _reference(logits)
    assert labels.shape == conf.shape == (shape[0], *shape[2:])
    assert torch.equal(labels, ref_labels)
    torch.testing.assert_close(conf, ref_conf, atol=1e-6, rtol=1e-5)
    assert torch.equal(pixel_labels(logits), ref_labels)


def test_ties_go_to_the_lowest_class_id():
    logits = torch.zeros(1, 4, 2, 3)
    logits[:, 2] = 1.0
    logits[:, 3] = 1.0
    labels, conf = labels_and_confidence(logits)
    assert (labels == 2).all()
    torch.testing.assert_close(conf, torch.full_like(conf, 1 / (2 + 2 * torch.e ** -1)))


def test_ties_among_many_classes_go_to_the_lowest_tied_id():
    g = torch.Generator().manual_seed(1)
    logits = torch.randint(0, 3, (2, 40, 9, 7), generator=g).float()  # ties everywhere
    assert torch.equal(pixel_labels(logits), logits.max(dim=1).indices)
    wide = torch.randint(0, 3, (1, 300, 4, 5), generator=g).float()  # more ids than uint8
    assert torch.equal(pixel_labels(wide), wide.max(dim=1).indices)


def test_a_nan_logit_still_gives_a_valid_class_id():
    logits = torch.zeros(1, 5, 2, 2)
    logits[0, 1, 0, 0] = float("nan")
    labels = pixel_labels(logits)
    assert labels.min() >= 0 and labels.max() < 5
    assert (labels.flatten()[1:] == 0).all()


@pytest.mark.parametrize("confidence", [False, True])
def test_a_pixel_reduction_reduces_only_the_class_channels(confidence):
    logits = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(4))
    maps = PixelReduction(classes=4, confidence=confidence)(logits)
    assert len(maps) == (2 if confidence else 1)
    assert torch.equal(maps[0], pixel_labels(logits[:, :4]))
    if confidence:
        torch.testing.assert_close(maps[1], labels_and_confidence(logits[:, :4])[1])
    assert torch.equal(PixelReduction()(logits)[0], pixel_labels(logits))
