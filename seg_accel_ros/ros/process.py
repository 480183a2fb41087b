"""The ``seg_accel_node`` process: process-wide settings first, then the node.

glibc fixes how many heaps its threads may use when a second thread first allocates, and
importing torch and rclpy starts threads; the allocator settings only hold for every thread
when they are made before those imports. ``ros2 run seg_accel_ros seg_accel_node`` and
``python -m seg_accel_ros.ros.process`` both start here.
"""

from __future__ import annotations

import sys

from seg_accel_ros.runtime import (
    keep_large_buffers_in_heap,
    keep_onednn_primitives,
    prefer_asynchronous_publication,
)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``seg_accel_node``."""
    keep_large_buffers_in_heap()
    keep_onednn_primitives()
    prefer_asynchronous_publication()
    from seg_accel_ros.ros.node import main as run_node  # torch and rclpy start threads

    run_node(args)


if __name__ == "__main__":
    main(sys.argv)
