"""Lateral and speed control for the simulated vehicle."""

from __future__ import annotations

import math


def pure_pursuit(target_x: float, target_y: float, wheelbase_m: float) -> float:
    """Steering angle that puts the rear axle on a circle through a target point.

    The target is given in the vehicle frame (x forward, y left) of the rear axle.
    """
    dist2 = target_x * target_x + target_y * target_y
    if dist2 < 1e-6:
        return 0.0
    curvature = 2.0 * target_y / dist2
    return math.atan(wheelbase_m * curvature)


def speed_control(speed: float, target: float, gain: float = 0.8) -> float:
    """Proportional acceleration command towards a target speed."""
    return gain * (target - speed)
