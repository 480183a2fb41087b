"""Block implementations of the torch functions networks call (registered on import).

Each module handles one family; anything without a handler runs densely on the assembled map
(``common.dense_fallback``) and is counted in ``tensor.FALLBACKS``.
"""

from seg_accel_ros.engine.blocks.ops import (  # noqa: F401  (registration)
    channels,
    elementwise,
    reduce,
    resample,
    windowed,
)
from seg_accel_ros.engine.blocks.ops.common import dense_fallback, resplit, tree_map
from seg_accel_ros.engine.blocks.ops.reduce import global_mean
from seg_accel_ros.engine.blocks.ops.resample import (
    integer_factor,
    upsample_path,
    upsampled_maps,
)
from seg_accel_ros.engine.blocks.ops.windowed import STRATEGIES, forced_strategy

__all__ = ["STRATEGIES", "dense_fallback", "forced_strategy", "global_mean", "integer_factor",
           "resplit", "tree_map", "upsample_path", "upsampled_maps"]
