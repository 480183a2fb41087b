"""EfficientNet-Lite encoder: feature strides, strict ImageNet weights, street-scene sanity."""

from __future__ import annotations

import math

import pytest
import torch

from seg_accel_ros.models.efficientnet_lite import (
    EfficientNetLite,
    efficientnet_lite,
    imagenet_weights_path,
    load_imagenet_weights,
)
from seg_accel_ros.models.preprocessing import IMAGENET

torch.set_flush_denormal(True)

# ImageNet classes a CamVid street scene plausibly gets: vehicles and street furniture.
STREET_CLASSES = {
    407, 436, 468, 511, 609, 627, 654, 656, 661, 675, 705, 717, 734, 751, 757, 779, 817, 867,
    874, 919, 920,
}


def _require_weights(variant: str) -> None:
    try:
        imagenet_weights_path(variant)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("variant", ["lite0", "lite1"])
@pytest.mark.parametrize("size", [(64, 96), (70, 101)])  # divisible / not divisible by 32
def test_feature_strides(variant: str, size: tuple[int, int]) -> None:
    encoder = EfficientNetLite(variant).eval()
    with torch.no_grad():
        feats = encoder(torch.randn(1, 3, *size))
    assert len(feats) == 4
    for f, stride, channels in zip(feats, (4, 8, 16, 32), encoder.out_channels, strict=True):
        assert f.shape == (1, channels, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    assert encoder.out_channels == (24, 40, 112, 1280)


def test_depths() -> None:
    assert len(EfficientNetLite("lite0")._blocks) == 16
    assert len(EfficientNetLite("lite1")._blocks) == 21


def test_no_squeeze_excitation_relu6_only() -> None:
    encoder = EfficientNetLite("lite0")
    kinds = {type(m) for m in encoder.modules() if not list(m.children())}
    assert kinds == {torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU6}


@pytest.mark.parametrize("variant", ["lite0", "lite1"])
def test_imagenet_weights_load_strict(variant: str) -> None:
    _require_weights(variant)
    state = torch.load(imagenet_weights_path(variant), map_location="cpu", weights_only=True)
    full = EfficientNetLite(variant, include_top=True)
    result = full.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # Without the classifier every non-classifier tensor is loaded too.
    encoder = efficientnet_lite(variant, pretrained=True)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_imagenet_classifier_recognises_street_scenes(camvid_root) -> None:
    """The loaded ImageNet network sees vehicles / traffic lights / signs in CamVid frames."""
    _require_weights("lite0")
    from seg_accel_ros.datasets.camvid import CamVid

    data = CamVid("train", camvid_root)
    x = torch.cat([IMAGENET.to_tensor(data[i][0]) for i in (0, 90, 180, 270)])
    encoder = EfficientNetLite("lite0", include_top=True).eval()
    load_imagenet_weights(encoder)
    with torch.no_grad():
        top5 = encoder.classify(x).topk(5, dim=1).indices
    hits = sum(bool(set(row.tolist()) & STREET_CLASSES) for row in top5)
    assert hits >= 3, top5.tolist()
