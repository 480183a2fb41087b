"""evaluation layer of seg_accel_ros."""
