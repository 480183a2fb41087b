"""seg_accel_ros: accelerated real-time semantic segmentation for ROS 2 camera streams."""

__version__ = "0.1.0"
