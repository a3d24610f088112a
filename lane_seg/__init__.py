"""lane_seg: real-time lane-marking segmentation for ROS 2."""

__version__ = "0.1.0"
