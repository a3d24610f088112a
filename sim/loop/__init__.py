"""Closed-loop lane keeping: scenarios, the in-process and ROS 2 loops, metrics, pictures."""
