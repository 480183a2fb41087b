"""Gathering blocks out of maps and putting them back (engine/blocks/gather.py)."""

import pytest
import torch
import torch.nn.functional as F

from seg_accel_ros.engine.blocks.gather import PUT_LOOP_MAX, downsample_avg2, grid_view, put_blocks

CL = torch.channels_last


@pytest.mark.parametrize("shape", [(1, 3, 8, 12), (5, 16, 9, 7), (2, 1, 2, 2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, CL])
def test_downsample_avg2_is_2x2_average_pooling_in_either_layout(shape, layout):
    x = torch.randn(*shape).contiguous(memory_format=layout)
    y = downsample_avg2(x)
    torch.testing.assert_close(y, F.avg_pool2d(x, 2), atol=1e-6, rtol=0)
    assert y.is_contiguous(memory_format=layout)


def test_downsample_avg2_of_integer_maps_falls_back_to_avg_pool():
    x = torch.arange(16.0).view(1, 1, 4, 4).double()
    torch.testing.assert_close(downsample_avg2(x), F.avg_pool2d(x, 2))


@pytest.mark.parametrize("n_blocks", [3, PUT_LOOP_MAX + 1])
def test_put_blocks_writes_each_block_at_its_grid_cell(n_blocks):
    rows, cols, b, c = 40, 30, 2, 3
    canvas = torch.zeros(rows * b, cols * b, c)
    cells = grid_view(canvas, rows, cols, b)
    order = torch.randperm(rows * cols, generator=torch.Generator().manual_seed(0))[:n_blocks]
    gy, gx = order // cols, order % cols
    blocks = torch.randn(n_blocks, b, b, c)
    put_blocks(cells, gy, gx, blocks)
    for i in range(0, n_blocks, 97):
        y, x = int(gy[i]), int(gx[i])
        assert torch.equal(canvas[y * b:(y + 1) * b, x * b:(x + 1) * b], blocks[i])
    assert int((canvas.abs().sum(-1) > 0).sum()) == n_blocks * b * b
