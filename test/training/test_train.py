"""Training pieces (augmentation, loss, schedule, metric) and seg_accel_train end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.models import create_model
from seg_accel_ros.models.preprocessing import IMAGENET
from seg_accel_ros.tools.train import main
from seg_accel_ros.training.data import AugmentedSegmentation, Subset, SyntheticScenes
from seg_accel_ros.training.loop import (
    EpochSampler,
    StepRunner,
    build_optimizer,
    limit_opencv_threads,
)
from seg_accel_ros.training.losses import OhemCrossEntropy, build_loss, enet_class_weights
from seg_accel_ros.training.schedule import lr_factor, training_progress
from seg_accel_ros.training.transforms import ColorChange, ColorJitter, TrainTransform, pad_to

torch.set_flush_denormal(True)
limit_opencv_threads()


def _samples(camvid_available: bool, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if camvid_available:
        from seg_accel_ros.datasets.camvid import CamVid

        data = CamVid("train")
        return [data[i * 37] for i in range(n)]
    return [SyntheticScenes(count=n)[i] for i in range(n)]


@pytest.fixture
def camvid_available() -> bool:
    from seg_accel_ros.datasets.camvid import default_root

    return (default_root() / "train").is_dir()


def test_transform_shapes_and_determinism() -> None:
    image, labels = SyntheticScenes(count=1, size=(90, 120))[0]
    t = TrainTransform(crop=(64, 80))
    a = t(image, labels, np.random.default_rng(3))
    b = t(image, labels, np.random.default_rng(3))
    assert a[0].shape == (64, 80, 3) and a[1].shape == (64, 80)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert set(np.unique(a[1])) <= set(range(12))


def test_color_change_scales_brightness_contrast_saturation_and_gamma() -> None:
    ramp = np.arange(0, 200, 10, dtype=np.uint8)
    image = np.stack([ramp + 40, ramp, ramp // 2], -1)[None].repeat(8, 0)  # coloured greys
    assert np.array_equal(ColorChange()(image), image)
    brighter = ColorChange(brightness=1.2)(image).astype(int)
    np.testing.assert_allclose(brighter, np.clip(np.round(image * 1.2), 0, 255), atol=1)
    flat = ColorChange(contrast=0.0)(image)
    assert np.ptp(flat.astype(int) @ [299, 587, 114]) < 3 * 1000  # one grey level, +-rounding
    grey = ColorChange(saturation=0.0)(image).astype(int)
    assert (np.ptp(grey, axis=-1) <= 1).all()
    darker = ColorChange(gamma=1.5)(image).astype(int)
    assert (darker <= image.astype(int) + 1).all() and darker.mean() < image.mean() - 5


def test_color_jitter_samples_within_its_ranges_and_rejects_bad_ones() -> None:
    jitter = ColorJitter.of_strength(0.4)
    changes = [jitter.sample(np.random.default_rng(i)) for i in range(200)]
    for name, spread in (("brightness", 0.4), ("contrast", 0.4), ("saturation", 0.4),
                         ("gamma", 0.2)):
        values = np.array([getattr(c, name) for c in changes])
        assert values.min() >= 1 - spread and values.max() <= 1 + spread
        assert values.max() - values.min() > spread  # it does vary
    assert ColorJitter().sample(np.random.default_rng(0)) == ColorChange()
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=1.0)


def test_transform_jitters_the_image_colours_only() -> None:
    image, labels = SyntheticScenes(count=1, size=(90, 120))[0]
    plain = TrainTransform(crop=(64, 80))
    jittered = TrainTransform(crop=(64, 80), color=ColorJitter.of_strength(0.5))
    a, b = plain(image, labels, np.random.default_rng(3)), jittered(image, labels,
                                                                     np.random.default_rng(3))
    assert np.array_equal(a[1], b[1])
    assert a[0].shape == b[0].shape and not np.array_equal(a[0], b[0])


def test_pad_uses_ignore_label() -> None:
    image, labels = np.zeros((10, 12, 3), np.uint8), np.zeros((10, 12), np.uint8)
    image, labels = pad_to(image, labels, 16, 20)
    assert labels.shape == (16, 20) and image.shape == (16, 20, 3)
    assert (labels[10:] == 11).all() and (labels[:, 12:] == 11).all()
    assert (labels[:10, :12] == 0).all()


def test_dataset_depends_on_seed_epoch_index_only() -> None:
    base = SyntheticScenes(count=3, size=(80, 80))
    ds = AugmentedSegmentation(base, TrainTransform(crop=(48, 48)), seed=1)
    x0, y0 = ds[2]
    assert x0.dtype == torch.uint8 and x0.shape == (3, 48, 48) and y0.dtype == torch.int64
    ds.set_epoch(1)
    x1, _ = ds[2]
    ds.set_epoch(0)
    assert torch.equal(ds[2][0], x0) and not torch.equal(x1, x0)
    assert list(EpochSampler(10, 0, 4)) == list(EpochSampler(10, 0, 4))
    assert list(EpochSampler(10, 0, 4, start=3)) == list(EpochSampler(10, 0, 4))[3:]


def test_repeats_make_an_epoch_several_fresh_passes() -> None:
    base = SyntheticScenes(count=3, size=(80, 80))
    once = AugmentedSegmentation(base, TrainTransform(crop=(48, 48)), seed=1)
    thrice = AugmentedSegmentation(base, TrainTransform(crop=(48, 48)), seed=1, repeats=3)
    assert len(thrice) == 9
    assert torch.equal(thrice[2][0], once[2][0])  # the first pass is the plain epoch
    assert not torch.equal(thrice[5][0], thrice[2][0])  # the same image, augmented afresh
    with pytest.raises(ValueError, match="repeats"):
        AugmentedSegmentation(base, None, repeats=0)


def test_ohem_and_balanced_losses() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(2, 11, 8, 8), torch.randint(0, 12, (2, 8, 8))
    ce = F.cross_entropy(logits, target, ignore_index=11)
    # threshold 1.0: every valid pixel is hard, OHEM is plain cross-entropy
    assert torch.allclose(OhemCrossEntropy(threshold=1.0)(logits, target), ce)
    assert OhemCrossEntropy()(logits, target) >= ce * 0.99
    perfect = F.one_hot(target.clamp(max=10), 11).permute(0, 3, 1, 2).float() * 50
    assert OhemCrossEntropy()(perfect, target) < 1e-3
    assert OhemCrossEntropy()(logits, torch.full_like(target, 11)) == 0
    w = enet_class_weights([0.3, 0.01])
    assert w[1] > w[0]
    for name in ("ce", "balanced", "ohem"):
        assert torch.isfinite(build_loss(name)(logits, target))


def test_schedules() -> None:
    for kind in ("poly", "cosine"):
        assert lr_factor(0.0, kind) == 1.0
        assert lr_factor(1.0, kind) == pytest.approx(0.0, abs=1e-9)
        assert 0 < lr_factor(0.5, kind) < 1
    assert lr_factor(0.005, "cosine", warmup=0.01) == pytest.approx(0.5)
    assert training_progress(10, 100) == 0.1
    assert training_progress(10, 100, elapsed_s=50, budget_s=100) == 0.5


def test_tiny_training_lowers_loss(camvid_available: bool) -> None:
    """A few steps on a few images (CamVid train, or synthetic scenes) lower the loss."""
    from seg_accel_ros.tools.train import build_training_model

    torch.manual_seed(0)
    samples = _samples(camvid_available, 2)
    ds = AugmentedSegmentation(samples, TrainTransform(crop=(64, 96), scale_range=(0.5, 0.5)))
    images, labels = (torch.stack(t) for t in zip(*(ds[i] for i in range(len(ds))), strict=True))
    model = build_training_model("swiftnet_lite0")
    opt = build_optimizer(model, lr=2e-3, encoder_lr_ratio=0.25)
    step = StepRunner(model, build_loss("ce"), opt, IMAGENET, torch.device("cpu"))
    losses = [step(images, labels) for _ in range(6)]
    assert all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2]), losses


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_train_tool_end_to_end(tmp_path: Path) -> None:
    """Synthetic data: train, validate, export, reload with create_model, resume."""
    out, export = tmp_path / "run", tmp_path / "weights.pt"
    common = ["--data", "synthetic", "--batch-size", "2", "--crop", "64", "64",
              "--epochs", "2", "--val-every", "1", "--val-subset", "2", "--log-every", "1",
              "--out", str(out), "--export", str(export)]
    assert main([*common, "--max-steps", "2", "--workers", "1"]) == 0
    events = _events(out)
    kinds = [e["event"] for e in events]
    assert kinds.count("train") == 2 and "val" in kinds and "export" in kinds
    assert all({"loss", "lr", "s_per_iter", "elapsed_s"} <= set(e) for e in events
               if e["event"] == "train")
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert export.stat().st_size < 25e6
    loaded = create_model("swiftnet_lite0", weights=export)
    with torch.no_grad():
        assert loaded.module(torch.zeros(1, 3, 32, 48)).shape == (1, 11, 32, 48)

    assert main([*common, "--max-steps", "3", "--workers", "0", "--resume"]) == 0
    events = _events(out)
    resume = [e for e in events if e["event"] == "resume"]
    assert resume and resume[0]["step"] == 2
    assert [e["step"] for e in events if e["event"] == "train"][-1] == 3


def test_trains_on_camvid_train_only(camvid_root: Path) -> None:
    from seg_accel_ros.tools.train import load_data, parse_args

    args = parse_args(["--out", "x", "--data-root", str(camvid_root), "--subset", "3",
                       "--val-subset", "2"])
    train, val = load_data(args)
    assert isinstance(train, Subset) and train.base.split == "train" and len(train) == 3
    assert len(val) == 2  # val only for the logged mIoU
    names = {s.image_path.name for s in train.base.samples}
    for split in ("val", "test"):
        from seg_accel_ros.datasets.camvid import CamVid

        assert not names & {s.image_path.name for s in CamVid(split, camvid_root).samples}


def test_low_path_loss_is_the_loss_on_the_upsampled_half_resolution_output() -> None:
    """With ``low_weight`` the step's loss adds the loss of the network on the 2x2-averaged
    input, upsampled back: what the block engine's LOW blocks show."""
    from seg_accel_ros.training.loop import low_path_logits

    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 11, 3, padding=1)  # no BatchNorm: train and eval agree
    images = torch.randint(0, 256, (2, 3, 64, 96), dtype=torch.uint8)
    labels = torch.randint(0, 11, (2, 64, 96))
    x = IMAGENET.normalize(images.float())
    with torch.no_grad():
        low = low_path_logits(model, x)
        expected = F.interpolate(model(F.avg_pool2d(x, 2)), scale_factor=2, mode="bilinear")
        torch.testing.assert_close(low, expected)
        loss_fn = build_loss("ce")
        dense_loss, low_loss = float(loss_fn(model(x), labels)), float(loss_fn(low, labels))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step only reports the loss
    for weight in (0.0, 0.5):
        step = StepRunner(model, loss_fn, opt, IMAGENET, torch.device("cpu"), low_weight=weight)
        assert step(images, labels) == pytest.approx(dense_loss + weight * low_loss, rel=1e-5)


def test_fine_tuning_validates_the_starting_weights_and_the_low_path(tmp_path: Path) -> None:
    """``--init`` + ``--low-weight``: the first val record is the starting point, every val
    record has the LOW path's mIoU and the score (their mean) that picks the export."""
    out, export = tmp_path / "run", tmp_path / "weights.pt"
    start = tmp_path / "start.pt"
    from seg_accel_ros.tools.train import build_training_model
    from seg_accel_ros.training.checkpoint import export_weights

    export_weights(build_training_model("swiftnet_lite0"), start)
    assert main(["--data", "synthetic", "--batch-size", "2", "--crop", "64", "64",
                 "--epochs", "1", "--val-every", "1", "--val-subset", "2", "--workers", "0",
                 "--max-steps", "2", "--low-weight", "0.5", "--init", str(start),
                 "--out", str(out), "--export", str(export)]) == 0
    vals = [e for e in _events(out) if e["event"] == "val"]
    assert vals[0]["step"] == 0 and len(vals) == 2
    for v in vals:
        assert v["score"] == pytest.approx((v["miou"] + v["low_miou"]) / 2, abs=0.01)
    assert export.is_file()


def test_freeze_bn_keeps_the_running_statistics_and_trains_the_rest() -> None:
    """``freeze_bn``: BatchNorm normalises with (and keeps) the starting running statistics,
    while convolutions still learn; without it a step moves the statistics."""
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 11, (2, 32, 32))
    for freeze in (True, False):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                    torch.nn.ReLU(), torch.nn.Conv2d(8, 11, 1))
        bn, conv = model[1], model[0]
        mean, weight = bn.running_mean.clone(), conv.weight.detach().clone()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        step = StepRunner(model, build_loss("ce"), opt, IMAGENET, torch.device("cpu"),
                          low_weight=0.5, freeze_bn=freeze)
        step(images, labels)
        assert torch.equal(bn.running_mean, mean) == freeze
        assert not bn.training if freeze else bn.training
        assert not torch.equal(conv.weight, weight)


def test_repeats_lengthen_the_epoch_of_the_train_tool(tmp_path: Path) -> None:
    """``--repeats N``: an epoch is N passes over the train set (N times the steps)."""
    common = ["--data", "synthetic", "--batch-size", "2", "--crop", "64", "64", "--epochs", "1",
              "--val-every", "0", "--workers", "0", "--max-steps", "1"]
    per_epoch = {}
    for repeats in (1, 3):
        out = tmp_path / f"r{repeats}"
        assert main([*common, "--repeats", str(repeats), "--out", str(out)]) == 0
        per_epoch[repeats] = next(e for e in _events(out) if e["event"] == "start")[
            "steps_per_epoch"]
    assert per_epoch[3] == 3 * per_epoch[1]
    with pytest.raises(SystemExit, match="--repeats must be at least 1"):
        main([*common, "--repeats", "0", "--out", str(tmp_path / "r0")])
