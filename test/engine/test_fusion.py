"""Cross-resolution fusion of LOW blocks (issue 5, AR-Seg's CReFF idea): what a LOW block is
fused with (the moved output of its last FULL computation, and how old it is), and that the
fusion is a per-pixel blend between the plain LOW output and that moved FULL output."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scenes import scene

from seg_accel_ros.engine.blocks import BlockEngine
from seg_accel_ros.engine.blocks.reuse import MotionField
from seg_accel_ros.engine.config import EngineConfig
from seg_accel_ros.engine.factory import build_engine
from seg_accel_ros.engine.fusion import CrossResolutionFusion, fusion_path, load_fusion
from seg_accel_ros.engine.result import BlockPath
from seg_accel_ros.engine.temporal import TemporalEngine
from seg_accel_ros.models.registry import create_model

FULL, LOW = int(BlockPath.FULL), int(BlockPath.LOW)
H, W = 256, 384  # 2 x 3 blocks of 128


@pytest.fixture(scope="module")
def model():
    torch.set_flush_denormal(True)
    return create_model("swiftnet_lite0", None, torch.device("cpu"))


class RecordingFusion(CrossResolutionFusion):
    """A fusion whose gate is fixed (1: take the moved FULL output, 0: keep LOW) and which
    records what it was given."""

    def __init__(self, num_classes: int, take_full: bool) -> None:
        super().__init__(num_classes)
        with torch.no_grad():
            self.gate[-1].weight.zero_()
            self.gate[-1].bias.fill_(60.0 if take_full else -60.0)
        self.calls: list[dict[str, torch.Tensor]] = []
        self.eval()

    def forward(self, low, moved_full, valid, age, low_up=None):
        self.calls.append({"moved_full": moved_full.clone(), "valid": valid.clone(),
                           "age": age.clone()})
        return super().forward(low, moved_full, valid, age, low_up)


def run(engine: BlockEngine, frames: list[np.ndarray], paths: list[np.ndarray],
        motions: list[MotionField | None] | None = None) -> list:
    """Frames through the block engine in temporal execution, each with its path map."""
    results = []
    cache = None
    for i, (image, p) in enumerate(zip(frames, paths, strict=True)):
        motion = (motions[i] if motions else MotionField.still(H, W)) if i else None
        results.append(engine.process(image, p, (cache, motion)))
        cache = engine.last_cache
    return results


def paths_of(value: int) -> np.ndarray:
    return np.full((2, 3), value)


# One FULL block keeps the op sequence of FULL frames (an all-LOW frame starts a new cache).
MOSTLY_LOW = np.array([[FULL, LOW, LOW], [LOW, LOW, LOW]])
LOW_PIXELS = np.kron(MOSTLY_LOW == LOW, np.ones((128, 128), bool))


def test_without_a_moved_full_output_the_gate_input_keeps_low():
    fusion = CrossResolutionFusion(11)
    low = torch.randn(2, 11, 8, 8)
    moved = torch.randn(2, 11, 16, 16)
    zero = torch.zeros(2, 1, 16, 16)
    up = torch.nn.functional.interpolate(low, scale_factor=2, mode="bilinear")
    torch.testing.assert_close(fusion(low, moved, zero, zero), up)


def test_low_blocks_take_the_moved_full_output_when_the_gate_opens(model):
    img = scene(H, W, seed=1)
    fusion = RecordingFusion(11, take_full=True)
    engine = BlockEngine(model)
    engine.model.fusion = fusion
    key, low = run(engine, [img, img], [paths_of(FULL), MOSTLY_LOW])
    np.testing.assert_array_equal(low.labels[LOW_PIXELS], key.labels[LOW_PIXELS])
    plain = run(BlockEngine(model), [img, img], [paths_of(FULL), MOSTLY_LOW])[1]
    assert (plain.labels != key.labels)[LOW_PIXELS].any()
    assert fusion.calls[0]["valid"].min() == 1.0
    assert torch.all(fusion.calls[0]["age"] == 1)


def test_a_closed_gate_gives_the_plain_low_output(model):
    img = scene(H, W, seed=2)
    mixed = np.array([[FULL, LOW, LOW], [LOW, FULL, LOW]])
    plain_engine = BlockEngine(model)
    plain = run(plain_engine, [img, img], [paths_of(FULL), mixed])[1]
    engine = BlockEngine(model)
    engine.model.fusion = RecordingFusion(11, take_full=False)
    fused = run(engine, [img, img], [paths_of(FULL), mixed])[1]
    np.testing.assert_array_equal(fused.labels, plain.labels)
    assert len(engine.model.fusion.calls) == 1


def test_the_last_full_computation_ages_and_stays_cached(model):
    """After a keyframe, LOW blocks fuse with the keyframe's output, one frame older each
    frame; a block that runs FULL becomes the new source (age 1 again)."""
    img = scene(H, W, seed=3)
    fusion = RecordingFusion(11, take_full=True)
    engine = BlockEngine(model)
    engine.model.fusion = fusion
    other = np.array([[LOW, FULL, LOW], [LOW, LOW, LOW]])
    run(engine, [img] * 5, [paths_of(FULL), MOSTLY_LOW, MOSTLY_LOW, MOSTLY_LOW, other])
    ages = [call["age"][:, 0, 0, 0].tolist() for call in fusion.calls]
    assert ages[:3] == [[1.0] * 5, [2.0] * 5, [3.0] * 5]
    assert ages[3] == [1.0, 4.0, 4.0, 4.0, 4.0]  # block (0, 0) ran FULL the frame before
    assert engine.last_cache.full_index is not None


def test_first_frame_low_blocks_have_nothing_to_fuse_with(model):
    img = scene(H, W, seed=4)
    fusion = RecordingFusion(11, take_full=True)
    engine = BlockEngine(model)
    engine.model.fusion = fusion
    plain = BlockEngine(model).process(img, paths_of(LOW), (None, None))
    first = engine.process(img, paths_of(LOW), (None, None))
    np.testing.assert_array_equal(first.labels, plain.labels)
    assert fusion.calls == []


def test_the_moved_full_output_follows_an_integer_translation(model):
    """The view moves 16 px right: a LOW frame fused with gate 1 shows the keyframe's labels
    shifted 16 px left (away from the right border, where nothing moved in)."""
    wide = scene(H, W + 32, seed=5)
    first_view, second_view = wide[:, :W].copy(), wide[:, 16:16 + W].copy()
    flow = np.zeros((H // 4, W // 4, 2), np.float32)
    flow[..., 0] = 16.0
    engine = BlockEngine(model)
    engine.model.fusion = RecordingFusion(11, take_full=True)
    key, moved = run(engine, [first_view, second_view], [paths_of(FULL), MOSTLY_LOW],
                     [None, MotionField(flow, 4.0)])
    inside = LOW_PIXELS[:, :W - 16]
    np.testing.assert_array_equal(moved.labels[:, :W - 16][inside], key.labels[:, 16:][inside])


def test_reuse_of_a_fused_low_block_reads_the_fused_output(model):
    """A block fused with gate 1 and then REUSEd shows the keyframe's output again (at the
    half resolution LOW blocks are cached at)."""
    img = scene(H, W, seed=6)
    engine = BlockEngine(model)
    engine.model.fusion = RecordingFusion(11, take_full=True)
    reuse = paths_of(int(BlockPath.REUSE))
    key, low, again = run(engine, [img] * 3, [paths_of(FULL), MOSTLY_LOW, reuse])
    plain_engine = BlockEngine(model)
    plain_again = run(plain_engine, [img] * 3, [paths_of(FULL), MOSTLY_LOW, reuse])[2]
    agree = (again.labels == key.labels)[LOW_PIXELS].mean()
    assert agree > (plain_again.labels == key.labels)[LOW_PIXELS].mean()
    assert agree > 0.9  # nearest-upsampled from half resolution: edges move


def test_bundled_weights_load_for_the_default_network():
    if not fusion_path("swiftnet_lite0").is_file():
        pytest.skip("no bundled fusion weights for swiftnet_lite0")
    fusion = load_fusion("swiftnet_lite0", 11)
    assert isinstance(fusion, CrossResolutionFusion)
    assert not fusion.training


def test_loading_reports_missing_and_mismatched_weights(tmp_path):
    assert load_fusion("no_such_network", 11) is None
    with pytest.raises(FileNotFoundError, match="fusion weights not found"):
        load_fusion("swiftnet_lite0", 11, tmp_path / "missing.pt")
    path = tmp_path / "f.pt"
    torch.save({"state_dict": CrossResolutionFusion(5).state_dict(), "hidden": 16}, path)
    with pytest.raises(ValueError, match="not a fusion checkpoint for 11 classes"):
        load_fusion("swiftnet_lite0", 11, path)


def test_temporal_engine_turns_fusion_on_and_off_live(model):
    fusion = RecordingFusion(11, take_full=True)
    engine = TemporalEngine(model, fusion=fusion)
    assert engine.blocks.model.fusion is None  # off by default
    engine.configure(low_fusion=True, reuse_threshold=3.0)
    assert engine.blocks.model.fusion is fusion
    assert engine.policy.config.reuse_threshold == 3.0
    engine.configure(low_fusion=False)
    assert engine.blocks.model.fusion is None


def test_factory_gives_the_temporal_engine_the_bundled_fusion():
    if not fusion_path("swiftnet_lite0").is_file():
        pytest.skip("no bundled fusion weights for swiftnet_lite0")
    engine = build_engine(EngineConfig(mode="temporal", low_fusion=True))
    assert isinstance(engine.blocks.model.fusion, CrossResolutionFusion)
