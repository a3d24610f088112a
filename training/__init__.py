"""Offline training, evaluation, quantization and export (installed as lane_seg.training)."""
