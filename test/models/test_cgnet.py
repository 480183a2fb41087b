"""CGNet: shapes at any input size, strict loading of the CamVid checkpoint, load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_path

from seg_accel_ros.datasets.camvid import CamVid
from seg_accel_ros.evaluation.metrics import ConfusionMatrix
from seg_accel_ros.models import ModelLoadError, create_model, get_spec
from seg_accel_ros.models.cgnet import CGNet
from seg_accel_ros.models.classes import CAMVID_IGNORE_INDEX

torch.set_flush_denormal(True)

CHECKPOINT = ("models", "cgnet_m3n21_camvid.pth")


@pytest.fixture(scope="module")
def net() -> CGNet:
    torch.manual_seed(0)
    return CGNet().eval()


def test_registered_with_its_preprocessing() -> None:
    spec = get_spec("cgnet")
    assert spec.num_classes == 11
    assert spec.default_weights is None
    assert spec.output_stride == 8
    pre = spec.preprocessing
    assert (pre.channel_order, pre.mean, pre.std, pre.scale) == (
        "rgb", (105.658, 103.330, 99.625), (1.0, 1.0, 1.0), 1.0)


def test_parameter_count_matches_the_paper() -> None:
    assert sum(p.numel() for p in CGNet().parameters()) == 494_258  # "0.5 M" for M3N21


@pytest.mark.parametrize("size", [
    (64, 96),    # divisible by 32
    (48, 80),    # by 16, not 32
    (40, 56),    # by 8, not 16
    (37, 53),    # odd
    (360, 480),  # CamVid
])
def test_logits_have_the_input_size(net: CGNet, size: tuple[int, int]) -> None:
    with torch.inference_mode():
        out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 11, *size)
    assert torch.isfinite(out).all()


def test_features_are_at_one_eighth(net: CGNet) -> None:
    with torch.inference_mode():
        feats = net.features(torch.randn(1, 3, 64, 96))
    assert feats.shape == (1, 256, 8, 12)


def test_eval_mode_is_deterministic(net: CGNet) -> None:
    x = torch.randn(1, 3, 48, 64)
    with torch.inference_mode():
        assert torch.equal(net(x), net(x))


def test_wrong_weights_file_is_a_model_load_error(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, other)
    with pytest.raises(ModelLoadError, match="do not fit"):
        create_model("cgnet", other)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ModelLoadError):
        create_model("cgnet", text)
    with pytest.raises(ModelLoadError, match="not found"):
        create_model("cgnet", tmp_path / "missing.pth")


def test_truncated_weights_file_is_a_model_load_error(tmp_path: Path) -> None:
    full = tmp_path / "full.pth"
    torch.save({"epoch": 1, "model": CGNet().state_dict()}, full)
    create_model("cgnet", full)  # the intact file loads
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="cannot read"):
        create_model("cgnet", truncated)


@pytest.mark.shared
def test_camvid_checkpoint_loads_strictly_and_segments_a_frame(camvid_root: Path) -> None:
    loaded = create_model("cgnet", shared_path(*CHECKPOINT))  # strict=True inside
    assert loaded.weights.endswith("cgnet_m3n21_camvid.pth")
    image, labels = CamVid("test", camvid_root)[0]
    with torch.inference_mode():
        logits = loaded.module(loaded.spec.preprocessing.to_tensor(image))
    assert logits.shape == (1, 11, *labels.shape)
    cm = ConfusionMatrix(11)
    cm.update(logits[0].argmax(0).numpy().astype(np.int64), labels, CAMVID_IGNORE_INDEX)
    assert cm.pixel_accuracy() > 0.85  # a wrong architecture or preprocessing lands far below
