"""Temporal consistency training: frame pairs with trusted flow, crops that keep the flow
right, the loss, and its place in a training step."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.models.preprocessing import IMAGENET
from seg_accel_ros.tools.train import main
from seg_accel_ros.training.consistency import (
    FramePair,
    PairBatches,
    PairCrop,
    VideoPairs,
    consistency_loss,
    read_video,
    trusted_flow,
)
from seg_accel_ros.training.loop import StepRunner
from seg_accel_ros.training.losses import build_loss
from seg_accel_ros.training.transforms import ColorJitter
from test.scenes import scene

DX, DY = 3, 2  # the camera moves so that current pixel (y, x) shows previous (y + DY, x + DX)


def _shifted_pair(h: int = 128, w: int = 192, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    big = scene(h + 40, w + 40, seed)
    previous = big[20:20 + h, 20:20 + w]
    current = big[20 + DY:20 + DY + h, 20 + DX:20 + DX + w]
    return np.ascontiguousarray(current), np.ascontiguousarray(previous)


def _exact_pair() -> FramePair:
    current, previous = _shifted_pair()
    h, w = current.shape[:2]
    flow = np.broadcast_to(np.float32([DX, DY]), (h, w, 2)).copy()
    return FramePair(current, previous, flow, np.ones((h, w), bool))


def test_trusted_flow_finds_the_motion_and_rejects_pixels_from_outside_the_frame() -> None:
    current, previous = _shifted_pair()
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (current, previous)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow, valid = trusted_flow(*grey, dis)
    inner = (slice(16, -16), slice(16, -16))
    assert np.median(flow[inner][..., 0]) == pytest.approx(DX, abs=0.25)
    assert np.median(flow[inner][..., 1]) == pytest.approx(DY, abs=0.25)
    assert valid[inner].mean() > 0.9
    assert not valid[:, -1].any() and not valid[-1].any()  # their source is outside


def test_crop_moves_the_flow_with_the_pixels() -> None:
    """Sampling the cropped previous frame at the crop's grid gives the cropped current
    frame, flipped or not."""
    pair = _exact_pair()
    transform = PairCrop(crop=(64, 96), scale_range=(1.0, 1.0))
    unflipped = PairCrop(crop=(64, 96), scale_range=(1.0, 1.0), flip=False)
    flips = set()
    for seed in range(6):
        current, previous, grid, valid = transform(pair, np.random.default_rng(seed))
        plain = unflipped(pair, np.random.default_rng(seed))[0]
        flips.add(not torch.equal(current, plain))
        if not torch.equal(current, plain):
            assert torch.equal(current, plain.flip(-1))
        assert current.shape == previous.shape == (3, 64, 96) and grid.shape == (64, 96, 2)
        moved = F.grid_sample(previous[None].float(), grid[None], mode="bilinear",
                              align_corners=True)[0]
        assert valid.float().mean() > 0.8
        torch.testing.assert_close(moved[:, valid], current[:, valid].float(), atol=1e-3,
                                   rtol=0)
        assert not valid[:, -DX:].all() or not valid[:, :DX].all()  # sources outside the crop
    assert flips == {True, False}


def test_crop_jitters_both_frames_alike_up_to_the_exposure_change() -> None:
    pair = _exact_pair()
    plain = PairCrop(crop=(64, 96), scale_range=(1.0, 1.0), flip=False)
    same = PairCrop(crop=(64, 96), scale_range=(1.0, 1.0), flip=False,
                    color=ColorJitter(brightness=0.5))
    exposed = PairCrop(crop=(64, 96), scale_range=(1.0, 1.0), flip=False,
                       color=ColorJitter(brightness=0.5), exposure=0.2)
    def brightness(frames: tuple[torch.Tensor, ...]) -> tuple[float, float]:
        return frames[0].float().mean().item(), frames[1].float().mean().item()

    steps = []
    for seed in range(6):
        base = plain(pair, np.random.default_rng(seed))
        out = same(pair, np.random.default_rng(seed))
        torch.testing.assert_close(out[2], base[2])  # the flow is not touched
        ratios = np.divide(brightness(out), brightness(base))
        assert ratios[0] == pytest.approx(ratios[1], abs=0.02) and abs(ratios[0] - 1) > 0.01
        shifted = np.divide(brightness(exposed(pair, np.random.default_rng(seed))),
                            brightness(base))
        steps.append(shifted[1] / shifted[0])
    assert all(0.78 < s < 1.22 for s in steps) and np.ptp(steps) > 0.05
    with pytest.raises(ValueError, match="exposure"):
        PairCrop(exposure=1.5)
    with pytest.raises(ValueError, match="needs the pairs' colour jitter"):
        PairCrop(exposure=0.2)  # no colour jitter to vary: it would be ignored


def test_consistency_loss_is_zero_for_predictions_that_follow_the_motion() -> None:
    torch.manual_seed(0)
    previous = torch.randn(1, 5, 40, 60, requires_grad=True)
    current = torch.zeros(1, 5, 40, 60)
    current[..., : 40 - DY, : 60 - DX] = previous.detach()[..., DY:, DX:]
    current.requires_grad_(True)
    pair = FramePair(np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60, 3), np.uint8),
                     np.broadcast_to(np.float32([DX, DY]), (40, 60, 2)).copy(),
                     np.ones((40, 60), bool))
    _, _, grid, valid = PairCrop(crop=(40, 60), scale_range=(1.0, 1.0), flip=False)(
        pair, np.random.default_rng(0))
    loss = consistency_loss(current, previous, grid[None], valid[None])
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10)
    unrelated = consistency_loss(torch.randn(1, 5, 40, 60), previous, grid[None], valid[None])
    assert float(unrelated.detach()) > 0.1
    other = torch.randn(1, 5, 40, 60, requires_grad=True)
    consistency_loss(other, previous, grid[None], valid[None]).backward()
    assert other.grad.abs().sum() > 0 and previous.grad.abs().sum() > 0  # both sides learn
    nothing = consistency_loss(other, previous, grid[None], torch.zeros_like(valid[None]))
    assert float(nothing) == 0.0


def test_batch_k_depends_on_seed_and_k_only() -> None:
    pairs = [_exact_pair(), _exact_pair()]
    batches = PairBatches(pairs, PairCrop(crop=(32, 48)), batch_size=3, seed=1)
    first, again = batches.batch(4), PairBatches(pairs, PairCrop(crop=(32, 48)), 3, 1).batch(4)
    assert [t.shape for t in first] == [(3, 3, 32, 48), (3, 3, 32, 48), (3, 32, 48, 2),
                                        (3, 32, 48)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], batches.batch(5)[0])
    with pytest.raises(ValueError, match="batch size"):
        PairBatches(pairs, batch_size=0)


def test_step_adds_the_weighted_consistency_loss_of_its_video_batch() -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 11, 3, padding=1)
    images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
    labels = torch.randint(0, 11, (2, 32, 48))
    pairs = PairBatches([_exact_pair()], PairCrop(crop=(32, 48)), batch_size=2)
    loss_fn = build_loss("ce")
    with torch.no_grad():
        dense = float(loss_fn(model(IMAGENET.normalize(images.float())), labels))
        current, previous, grid, valid = pairs.batch(7)
        tc = float(consistency_loss(model(IMAGENET.normalize(current.float())),
                                    model(IMAGENET.normalize(previous.float())), grid, valid))
    assert tc > 0
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step only reports the loss
    step = StepRunner(model, loss_fn, opt, IMAGENET, torch.device("cpu"), pairs=pairs,
                      consistency_weight=10.0)
    assert step(images, labels, step=7) == pytest.approx(dense + 10.0 * tc, rel=1e-5)


def _write_video(path: Path, frames: int = 5) -> Path:
    big = scene(200, 260, seed=3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (192, 128))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(big[10 + i:138 + i, 20 + 2 * i:212 + 2 * i]),
                                  cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_pairs_are_every_frame_with_its_one_or_two_predecessors(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "clip.mp4")
    frames = read_video(video)
    assert len(frames) == 5 and frames[0].shape == (128, 192, 3)
    pairs = VideoPairs([frames], max_gap=2)
    assert len(pairs) == 1 + 2 + 2 + 2  # frame 1 has one predecessor, frames 2-4 two
    second = pairs[1]  # frame 2 against frame 1: pixel (y, x) shows frame 1's (y + 1, x + 2)
    inner = (slice(16, -16), slice(16, -16))
    assert np.median(second.flow[inner][..., 0]) == pytest.approx(2, abs=0.3)
    assert np.median(second.flow[inner][..., 1]) == pytest.approx(1, abs=0.3)
    with pytest.raises(ValueError, match="fewer than two frames"):
        read_video(tmp_path / "missing.mp4")


def test_train_tool_takes_consistency_clips(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "clip.mp4")
    out = tmp_path / "run"
    common = ["--data", "synthetic", "--batch-size", "2", "--crop", "64", "64", "--epochs", "1",
              "--val-every", "0", "--workers", "0", "--max-steps", "2", "--log-every", "1",
              "--out", str(out)]
    assert main([*common, "--consistency-video", str(video), "--consistency-crop", "64", "96",
                 "--consistency-weight", "5"]) == 0
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["config"]["consistency_weight"] == 5.0
    assert start["config"]["extra"]["consistency_video"] == [str(video)]
    assert [e["step"] for e in events if e["event"] == "train"][-1] == 2
    with pytest.raises(SystemExit, match="consistency-video"):
        main([*common, "--consistency-video", str(tmp_path / "missing.mp4")])
    assert main([*common, "--consistency-video", str(video), "--consistency-crop", "64", "96",
                 "--color-jitter", "0.3", "--exposure-change", "0.05"]) == 0
    start = [e for e in map(json.loads, (out / "log.jsonl").read_text().splitlines())
             if e["event"] == "start"][-1]
    assert start["config"]["extra"]["color_jitter"] == 0.3
    assert start["config"]["extra"]["pair_color_jitter"] == 0.3
    assert main([*common, "--consistency-video", str(video), "--consistency-crop", "64", "96",
                 "--pair-color-jitter", "0.2"]) == 0
    start = [e for e in map(json.loads, (out / "log.jsonl").read_text().splitlines())
             if e["event"] == "start"][-1]
    assert (start["config"]["extra"]["color_jitter"],
            start["config"]["extra"]["pair_color_jitter"]) == (0.0, 0.2)
    with pytest.raises(SystemExit, match="pair-color-jitter"):
        main([*common, "--consistency-video", str(video), "--pair-color-jitter", "1.5"])
    with pytest.raises(SystemExit, match="^--color-jitter"):
        main([*common, "--consistency-video", str(video), "--color-jitter", "1.5"])
    with pytest.raises(SystemExit, match="color-jitter"):
        main([*common, "--color-jitter", "1.5"])
    with pytest.raises(SystemExit, match="exposure-change"):
        main([*common, "--consistency-video", str(video), "--exposure-change", "2"])
    with pytest.raises(SystemExit, match="needs the pairs' colour jitter"):
        main([*common, "--consistency-video", str(video), "--exposure-change", "0.05"])
    with pytest.raises(SystemExit, match="none is given"):
        main([*common, "--exposure-change", "0.05"])
