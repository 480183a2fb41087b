"""ESPNet: shapes at any input size, strict loading of the CamVid checkpoint, load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path

from seg_accel_ros.datasets.camvid import CamVid
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models import ModelLoadError, create_model, get_spec
from seg_accel_ros.models.classes import CAMVID_CLASSES, CAMVID_IGNORE_INDEX
from seg_accel_ros.models.espnet import ESPNet, ESPNetEncoder

torch.set_flush_denormal(True)

CHECKPOINT = ("models", "espnet_p2q8_camvid.pth")


@pytest.fixture(scope="module")
def net() -> ESPNet:
    torch.manual_seed(0)
    return ESPNet().eval()


def test_registered_with_its_preprocessing_and_unlabelled_class() -> None:
    spec = get_spec("espnet")
    # the 12th output channel is CamVid's Unlabelled (label 11), a class the network predicts
    assert spec.class_names == (*CAMVID_CLASSES, "Unlabelled")
    assert spec.class_names.index("Unlabelled") == CAMVID_IGNORE_INDEX
    assert len(spec.palette) == spec.num_classes == 12
    assert spec.default_weights is None
    pre = spec.preprocessing
    assert (pre.channel_order, pre.mean, pre.std) == (
        "bgr", (110.331, 108.409, 105.033), (72.126, 72.691, 69.904))
    assert pre.scale == pytest.approx(1 / 255)


def test_parameter_count_matches_the_published_model() -> None:
    assert sum(p.numel() for p in ESPNet().parameters()) == 354_517  # "0.36 M"


@pytest.mark.parametrize("size", [
    (64, 96),    # divisible by 32
    (48, 80),    # by 16, not 32
    (40, 56),    # by 8, not 16
    (37, 53),    # odd: the decoder crops the extra row/column of each 2x upsampling
    (58, 46),    # even but not divisible by 4
    (360, 480),  # CamVid
])
def test_logits_have_the_input_size(net: ESPNet, size: tuple[int, int]) -> None:
    with torch.inference_mode():
        out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 12, *size)
    assert torch.isfinite(out).all()


def test_encoder_features_and_logits_resolutions() -> None:
    enc = ESPNetEncoder(num_classes=12).eval()
    with torch.inference_mode():
        half, quarter, eighth = enc.features(torch.randn(1, 3, 64, 96))
        logits = enc(torch.randn(1, 3, 64, 96))
    assert half.shape == (1, 19, 32, 48)
    assert quarter.shape == (1, 131, 16, 24)
    assert eighth.shape == (1, 256, 8, 12)
    assert logits.shape == (1, 12, 8, 12)


def test_eval_mode_is_deterministic(net: ESPNet) -> None:
    x = torch.randn(1, 3, 48, 64)
    with torch.inference_mode():
        assert torch.equal(net(x), net(x))


def test_wrong_weights_file_is_a_model_load_error(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save({"encoder.level1.conv.weight": torch.zeros(8, 3, 3, 3)}, other)  # wrong shape
    with pytest.raises(ModelLoadError, match="do not fit"):
        create_model("espnet", other)
    with pytest.raises(ModelLoadError):
        create_model("espnet", tmp_path)  # a folder, not a file


def test_truncated_weights_file_is_a_model_load_error(tmp_path: Path) -> None:
    full = tmp_path / "full.pth"
    torch.save(ESPNet().state_dict(), full)
    create_model("espnet", full)  # the intact bare state dict loads
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(full.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="cannot read"):
        create_model("espnet", truncated)


@pytest.mark.shared
def test_camvid_checkpoint_loads_strictly_and_segments_a_frame(camvid_root: Path) -> None:
    loaded = create_model("espnet", shared_path(*CHECKPOINT))  # strict=True inside
    image, labels = CamVid("test", camvid_root)[0]
    with torch.inference_mode():
        logits = loaded.module(loaded.spec.preprocessing.to_tensor(image))
    assert logits.shape == (1, 12, *labels.shape)
    cm = ConfusionMatrix(11)
    cm.update(logits[0].argmax(0).numpy().astype(np.int64), labels, CAMVID_IGNORE_INDEX)
    assert cm.pixel_accuracy() > 0.8  # a wrong architecture or preprocessing lands far below
