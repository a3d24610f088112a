"""Evaluation: lane IoU, Dice and mIoU of a model on labelled frames."""
