"""Data sources and closed loop: built-in road simulator, CARLA (installed as lane_seg.sim)."""
