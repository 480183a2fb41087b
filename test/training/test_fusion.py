"""Training the LOW-block fusion: the ego-motion that precedes still images, streams cut from
clips, the examples the engine produces, the loss, and the command line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scenes import scene

from seg_accel_ros.engine.fusion import CrossResolutionFusion, load_fusion
from seg_accel_ros.engine.motion import MotionEstimator
from seg_accel_ros.engine.temporal_policy import TemporalConfig
from seg_accel_ros.models.registry import create_model
from seg_accel_ros.tools import train_fusion
from seg_accel_ros.training.fusion import (
    EngineTeacher,
    agreement_with_dense,
    batches,
    chunks,
    ego_motion,
    fst_loss,
)
from seg_accel_ros.training.fusion import train_fusion as fit


@pytest.fixture(scope="module")
def model():
    torch.set_flush_denormal(True)
    return create_model("swiftnet_lite0", None, torch.device("cpu"))


def test_no_gap_no_ego_motion():
    img = scene(96, 128)
    np.testing.assert_array_equal(ego_motion(img, 0, np.random.default_rng(0)), img)


def test_ego_motion_zooms_out_the_earlier_frame():
    """Driving forward, the earlier frame saw the scene smaller: content left of the focus
    of expansion was further right, content right of it further left."""
    img = scene(192, 256, seed=1)
    before = ego_motion(img, 4, np.random.default_rng(3))
    assert before.shape == img.shape and not np.array_equal(before, img)
    motion = MotionEstimator(1)
    flow = motion.estimate(motion.prepare(img), motion.prepare(before)).flow
    assert flow[:, :96, 0].mean() > flow[:, 160:, 0].mean()


def test_chunks_split_a_clip_into_streams():
    runs = list(chunks(range(7), 3))
    assert runs == [[0, 1, 2], [3, 4, 5]]  # a single left-over frame has nothing to fuse
    assert list(chunks(range(8), 3))[-1] == [6, 7]


def test_engine_examples_are_the_low_blocks_it_fuses(model):
    """A keyframe, then the same view moved: the engine's LOW blocks become examples, with
    the moved keyframe output, its age and the dense output of the same block."""
    teacher = EngineTeacher(model, TemporalConfig(reuse_threshold=0.0, full_fraction=0.2),
                            blocks_per_frame=3)
    img = scene(256, 384, seed=2)
    examples = teacher.sequence([img, img])
    assert len(examples) == 3
    for e in examples:
        assert e.low.shape == (11, 64, 64) and e.low.dtype == torch.float16
        assert e.moved_full.shape == e.target.shape == (11, 128, 128)
        assert float(e.valid.min()) == 1.0 and float(e.age.max()) == 1.0
        # the same frame twice: the moved FULL output is the dense output
        assert (e.moved_full.argmax(0) == e.target.argmax(0)).float().mean() > 0.99


def test_training_lowers_the_loss_and_keeps_the_better_input(model):
    teacher = EngineTeacher(model, TemporalConfig(reuse_threshold=0.0, full_fraction=0.2),
                            blocks_per_frame=2)
    rng = np.random.default_rng(1)
    examples = []
    for seed in range(3):
        img = scene(256, 384, seed=seed + 10)
        examples += teacher.sequence([img, img])  # moved FULL = dense: trust it
        examples += teacher.sequence([ego_motion(img, 3, rng), img])
    fusion = CrossResolutionFusion(11)

    def loss() -> float:
        with torch.no_grad():
            return float(sum(fst_loss(fusion(lo, mo, va, ag), ta)
                             for lo, mo, va, ag, ta in batches(examples, 8,
                                                               np.random.default_rng(0))))

    before = loss()
    fit(fusion, examples, epochs=8, batch_size=4, lr=1e-2)
    assert loss() < before
    scores = agreement_with_dense(fusion, examples)
    assert scores["fused"] >= scores["low"]


def test_command_line_trains_on_a_clip_and_saves_loadable_weights(tmp_path):
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (192, 128))
    wide = scene(128, 192 + 40, seed=7)
    for i in range(8):
        writer.write(cv2.cvtColor(np.ascontiguousarray(wide[:, i * 4:i * 4 + 192]),
                                  cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "fusion.pt"
    code = train_fusion.main(["--video", str(clip), "--clip-length", "4", "--block-size", "64",
                              "--reuse-threshold", "0", "--epochs", "1", "--out", str(out)])
    assert code == 0
    fusion = load_fusion("swiftnet_lite0", 11, out)
    assert isinstance(fusion, CrossResolutionFusion)
    saved = torch.load(out, weights_only=True)
    assert set(saved["held_out_agreement"]) == {"low", "moved_full", "fused"}
