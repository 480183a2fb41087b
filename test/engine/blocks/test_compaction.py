"""Cache compaction (issue 5, memory): older frames keep only the rows later frames still
point at; what any pixel reads through the renumbered indexes is unchanged."""

from __future__ import annotations

import numpy as np
import torch

from seg_accel_ros.engine.blocks import BlockEngine, compaction
from seg_accel_ros.engine.blocks.compaction import compact
from seg_accel_ros.engine.blocks.reuse import MotionField, OpMaps, encode
from seg_accel_ros.engine.result import BlockPath

ROW_BITS = 32
R, F_ = int(BlockPath.REUSE), int(BlockPath.FULL)
LEVEL_A, LEVEL_B = (8, (16, 16)), (4, (8, 8))


def _read(ops: tuple[OpMaps, ...], codes: np.ndarray, op_index: int) -> torch.Tensor:
    """The rows ``codes`` name in op ``op_index``'s tables (the slow, obvious way)."""
    tables = ops[op_index].tables
    return torch.stack([tables[int(c) >> (ROW_BITS + 2)][(int(c) >> ROW_BITS) & 3][
        int(c) & ((1 << ROW_BITS) - 1)] for c in codes.ravel()])


def _synthetic():
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(100, 3, generator=g)  # one map read by two ops of level A
    ops = (OpMaps((*LEVEL_A, 3), {0: {F_: shared}, 1: {F_: torch.randn(100, 3, generator=g)}}),
           OpMaps((*LEVEL_A, 3), {0: {F_: shared}, 1: {F_: torch.randn(100, 3, generator=g)}}),
           OpMaps((*LEVEL_B, 5), {0: {F_: torch.randn(40, 5, generator=g)},
                                  1: {F_: torch.randn(40, 5, generator=g)}},
                  {0: {F_: (torch.arange(40.0),)}}))
    index_a = np.concatenate([encode(0, F_, np.array([7, 3, 7, 90])),
                              encode(1, F_, np.arange(60))])
    index_b = np.concatenate([encode(0, F_, np.arange(30)), encode(1, F_, np.arange(40))])
    return ops, {LEVEL_A: index_a, LEVEL_B: index_b}


def test_rarely_used_tables_of_older_frames_keep_only_their_used_rows():
    ops, indexes = _synthetic()
    before = {k: v.copy() for k, v in indexes.items()}
    expected = [_read(ops, before[LEVEL_A], 0), _read(ops, before[LEVEL_A], 1),
                _read(ops, before[LEVEL_B], 2)]
    out = compact(ops, indexes, None, current=1, row_bits=ROW_BITS)
    # frame 0 at level A: 3 of 100 rows used -> compacted, once for the shared map
    assert out[0].tables[0][F_].shape == (3, 3)
    assert out[0].tables[0][F_] is out[1].tables[0][F_]
    # the current frame is never compacted; frame 0 at level B uses 30 of 40 rows: kept
    assert out[0].tables[1][F_] is ops[0].tables[1][F_]
    assert out[2].tables[0][F_] is ops[2].tables[0][F_]
    assert [torch.equal(e, r) for e, r in zip(expected, (
        _read(out, indexes[LEVEL_A], 0), _read(out, indexes[LEVEL_A], 1),
        _read(out, indexes[LEVEL_B], 2)), strict=True)] == [True] * 3
    assert ops[0].tables[0][F_].shape == (100, 3)  # the input ops are left as they were


def test_reduced_maps_and_the_last_full_index_are_renumbered_too():
    ops, indexes = _synthetic()
    full = encode(0, F_, np.array([2, 0, 5]))
    full[1] = -1  # no FULL computation yet at this pixel
    out = compact(ops, indexes, (LEVEL_B, full), current=1, row_bits=ROW_BITS, share=0.9)
    used = sorted(set(range(30)) | {2, 5})
    assert out[2].tables[0][F_].shape == (len(used), 5)
    assert torch.equal(out[2].reduced[0][F_][0], torch.tensor(used, dtype=torch.float32))
    assert full[1] == -1
    assert torch.equal(_read(out, full[[0, 2]], 2), ops[2].tables[0][F_][[2, 5]])


def test_share_zero_turns_compaction_off():
    ops, indexes = _synthetic()
    before = {k: v.copy() for k, v in indexes.items()}
    out = compact(ops, indexes, None, current=1, row_bits=ROW_BITS, share=0.0)
    assert all(a is b for a, b in zip(out, ops, strict=True))
    assert all(np.array_equal(before[k], indexes[k]) for k in indexes)


def _sequence(engine: BlockEngine, x: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """A keyframe, a frame that REUSEs one block of it, then all REUSE moved by 32 px (its
    sources span both earlier frames): the outputs and the last cache's bytes."""
    size = tuple(x.shape[2:])
    flow = torch.tensor([-32.0, 0.0]).expand(size[0] // 4, size[1] // 4, 2).numpy().copy()
    steps = [(torch.full((2, 3), F_), None),
             (torch.tensor([[R, F_, F_], [F_, F_, F_]]), MotionField.still(*size)),
             (torch.full((2, 3), R), MotionField(flow, 4.0))]
    cache, outs = None, []
    with torch.inference_mode():
        for paths, motion in steps:
            outs.append(engine.model(x, paths, temporal=(cache, motion)))
            cache = engine.model.last_cache
    return outs, cache.nbytes()


def test_compaction_changes_no_output_and_holds_less(make_net, make_image, monkeypatch):
    x = make_image((256, 384), torch.Generator().manual_seed(3))
    compacted, small = _sequence(BlockEngine(make_net("unet_like"), 128), x)
    monkeypatch.setattr(compaction, "COMPACT_SHARE", 0.0)
    plain, large = _sequence(BlockEngine(make_net("unet_like"), 128), x)
    assert all(torch.equal(a, b) for a, b in zip(compacted, plain, strict=True))
    assert small < 0.8 * large
