"""Benchmarks: `lane-seg bench` (every engine, one run) and the node over real ROS 2."""
