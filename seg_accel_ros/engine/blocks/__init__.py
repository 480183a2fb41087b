"""Block-sparse execution (SegBlocks) with BlockPad: FULL and LOW blocks of one frame.

``BlockEngine(model, block_size=128).run(x, paths)`` runs an unmodified network on a
``rows x cols`` map of block paths; see ``convert.py`` for the mechanism and ``blockpad.py``
for the neighbour rules.
"""

from seg_accel_ros.engine.blocks import ops as _ops  # noqa: F401  (registers the handlers)
from seg_accel_ros.engine.blocks.convert import BlockwiseModel
from seg_accel_ros.engine.blocks.executor import BlockEngine
from seg_accel_ros.engine.blocks.grid import BlockGrid
from seg_accel_ros.engine.blocks.tensor import BlockExecutionError, BlockTensor

__all__ = ["BlockEngine", "BlockExecutionError", "BlockGrid", "BlockTensor", "BlockwiseModel"]
