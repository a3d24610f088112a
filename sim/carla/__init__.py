"""CARLA: connection, ego and camera spawn, labels, the collector and the closed loop."""
