"""Preprocessing: the values each network expects, in the memory layout convolutions run fastest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_accel_ros.models.preprocessing import IMAGENET, Preprocessing


def test_values_are_normalised_per_channel():
    image = np.zeros((2, 3, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30
    x = Preprocessing(mean=(10.0, 10.0, 10.0), std=(1.0, 2.0, 4.0)).to_tensor(image)
    assert x.shape == (1, 3, 2, 3)
    assert x[0, :, 0, 0].tolist() == [0.0, 5.0, 5.0]


def test_bgr_networks_get_the_channels_reversed():
    image = np.zeros((1, 1, 3), np.uint8)
    image[0, 0] = (1, 2, 3)
    assert Preprocessing(channel_order="bgr").to_tensor(image)[0, :, 0, 0].tolist() == [3, 2, 1]


@pytest.mark.parametrize("hw", [(4, 5), (360, 480)])
def test_the_tensor_has_canonical_channels_last_strides(hw):
    """A batch stride of anything but H*W*C makes convolutions fall back to NCHW (slower)."""
    h, w = hw
    x = IMAGENET.to_tensor(np.zeros((h, w, 3), np.uint8))
    assert x.stride() == (h * w * 3, 1, w * 3, 3)
    assert torch.equal(x, x.contiguous())


def test_a_read_only_view_is_accepted():
    image = np.zeros((4, 4, 3), np.uint8)
    image.flags.writeable = False
    assert IMAGENET.to_tensor(image).shape == (1, 3, 4, 4)


def test_an_image_without_three_channels_is_refused():
    with pytest.raises(ValueError, match="HxWx3"):
        IMAGENET.to_tensor(np.zeros((4, 4), np.uint8))
