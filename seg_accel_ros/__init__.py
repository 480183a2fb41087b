"""seg_accel_ros: accelerated real-time semantic segmentation for ROS 2 camera streams."""

from seg_accel_ros.runtime import prefer_huge_pages

__version__ = "0.1.0"

prefer_huge_pages()  # before anything imports torch
