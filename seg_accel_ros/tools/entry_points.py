"""Console entry points of tools that time the engines: the node's allocator settings first.

glibc fixes its heap limits when a second thread first allocates and importing torch starts
threads, so the settings (see :func:`seg_accel_ros.runtime.keep_large_buffers_in_heap`) are
made before the tool is imported; its speed figures then match the node's.
"""

from __future__ import annotations

from seg_accel_ros.runtime import keep_large_buffers_in_heap, keep_onednn_primitives


def seg_accel_eval() -> int:
    """``seg_accel_eval``: :func:`seg_accel_ros.tools.eval.main` under the node's settings."""
    keep_large_buffers_in_heap()
    keep_onednn_primitives()
    from seg_accel_ros.tools.eval import main

    return main()


def seg_accel_tune() -> int:
    """``seg_accel_tune``: :func:`seg_accel_ros.tools.tune.main` under the node's settings."""
    keep_large_buffers_in_heap()
    keep_onednn_primitives()
    from seg_accel_ros.tools.tune import main

    return main()
