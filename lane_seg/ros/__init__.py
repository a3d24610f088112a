"""The ROS 2 side: message conversion, the segmentation and controller nodes, bag replay.

Importing this package needs no rclpy; the node modules do."""
