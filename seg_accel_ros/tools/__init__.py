"""tools layer of seg_accel_ros."""
