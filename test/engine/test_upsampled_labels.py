"""Labels of bilinearly upsampled logits, found from the logits before upsampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seg_accel_ros.engine.result import PixelReduction, pixel_labels
from seg_accel_ros.engine.upsampled_labels import (
    network_pixel_maps,
    resized_labels,
    upsampled_labels,
    window_weights,
)
from seg_accel_ros.models.registry import create_model


def _patchy(n: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Logits in class regions a few pixels wide, with smooth noise: uniform windows and
    class borders both."""
    g = torch.Generator().manual_seed(seed)
    regions = F.interpolate(torch.randn(n, c, h // 3 + 1, w // 3 + 1, generator=g),
                            size=(h, w), mode="nearest")
    return regions + 0.3 * torch.randn(n, c, h, w, generator=g)


def _reference(logits: torch.Tensor, f: int) -> torch.Tensor:
    up = F.interpolate(logits, scale_factor=f, mode="bilinear", align_corners=False)
    return pixel_labels(up)


@pytest.mark.parametrize("f", [1, 2, 3, 4, 5, 8])
def test_labels_equal_the_argmax_of_the_upsampled_logits_at_any_factor(f):
    logits = _patchy(3, 5, 13, 19, seed=f)
    padded = F.pad(logits, (1, 1, 1, 1), mode="replicate")
    labels = upsampled_labels(padded, f)
    assert labels.shape == (3, 13 * f, 19 * f) and labels.dtype == torch.uint8
    assert torch.equal(labels.long(), _reference(logits, f))


def test_the_halo_is_read_but_not_returned():
    g = torch.Generator().manual_seed(1)
    padded = torch.randn(2, 4, 10, 12, generator=g)  # a map with its halo, as a block has
    up = F.interpolate(padded, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.equal(upsampled_labels(padded, 2).long(), pixel_labels(up[:, :, 2:-2, 2:-2]))


def test_channels_last_input_gives_the_same_labels():
    padded = F.pad(_patchy(2, 11, 16, 16, seed=3), (1, 1, 1, 1), mode="replicate")
    channels_last = padded.contiguous(memory_format=torch.channels_last)
    assert torch.equal(upsampled_labels(channels_last, 4), upsampled_labels(padded, 4))


def test_a_uniform_map_needs_no_interpolation():
    logits = torch.zeros(1, 3, 6, 7)
    logits[:, 2] = 1.0
    assert (upsampled_labels(F.pad(logits, (1, 1, 1, 1), mode="replicate"), 4) == 2).all()


def test_each_output_is_a_convex_combination_of_its_window():
    for f in range(1, 9):
        weights = window_weights(f)
        assert weights.shape == (f * f, 4)
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(1), torch.ones(f * f, dtype=torch.float64))


def test_more_than_256_classes_come_back_as_int64():
    logits = _patchy(1, 300, 6, 6, seed=4)
    labels = upsampled_labels(F.pad(logits, (1, 1, 1, 1), mode="replicate"), 2)
    assert labels.dtype == torch.int64
    assert torch.equal(labels, _reference(logits, 2))


def test_resizing_to_an_integer_multiple_matches_interpolate_and_otherwise_declines():
    logits = _patchy(1, 11, 18, 32, seed=5)
    labels = resized_labels(logits, (72, 128))
    assert labels is not None
    assert torch.equal(labels.long(), _reference(logits, 4))
    assert resized_labels(logits, (72, 130)) is None  # not a multiple
    assert resized_labels(logits, (72, 96)) is None  # different factors per axis
    assert resized_labels(logits, (9, 16)) is None  # a reduction


class _Coarse(nn.Module):
    """A network exposing its logits before the final resize, counting full forwards."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 6, 3, stride=4, padding=1)
        self.forwards = 0

    def coarse_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards += 1
        return F.interpolate(self.coarse_logits(x), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


@pytest.mark.parametrize("size", [(64, 96), (66, 94)])
def test_networks_with_coarse_logits_skip_the_full_size_logits(size):
    net = _Coarse().eval()
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        expected = PixelReduction(5)(net(x))
        net.forwards = 0
        (labels,) = network_pixel_maps(net, x, PixelReduction(5))
    assert net.forwards == 0
    assert torch.equal(labels.long(), expected[0])


def test_confidence_and_networks_without_coarse_logits_run_the_whole_network():
    net = _Coarse().eval()
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        labels, confidence = network_pixel_maps(net, x, PixelReduction(5, confidence=True))
        assert net.forwards == 1
        plain = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1)).eval()
        (only,) = network_pixel_maps(plain, x, PixelReduction())
        assert torch.equal(only, pixel_labels(plain(x)))
    assert confidence.shape == labels.shape == (1, 64, 96)


@pytest.mark.parametrize("name", ["swiftnet_lite0", "cgnet"])
def test_registered_networks_give_their_forward_labels(name):
    model = create_model(name)
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(8))
    reduce = PixelReduction(model.spec.num_classes)
    with torch.inference_mode():
        (expected,) = reduce(model.module(x))
        (labels,) = network_pixel_maps(model.module, x, reduce)
    assert torch.equal(labels.long(), expected)


def test_a_network_returning_several_maps_is_refused_clearly():
    net = nn.ModuleDict({"a": nn.Conv2d(3, 4, 1)}).eval()
    net.forward = lambda x: (net["a"](x), net["a"](x))  # type: ignore[method-assign]
    with torch.inference_mode(), pytest.raises(TypeError, match="one 4-D map"):
        network_pixel_maps(net, torch.zeros(1, 3, 8, 8), PixelReduction())
