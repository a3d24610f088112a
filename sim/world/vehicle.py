"""Kinematic bicycle model: the ego vehicle the closed loop steers."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VehicleParams:
    wheelbase_m: float = 2.8
    max_steer_rad: float = math.radians(35.0)
    max_steer_rate: float = math.radians(60.0)  # rad/s at the road wheels
    max_accel: float = 3.0
    max_decel: float = 6.0


@dataclass
class VehicleState:
    """Pose of the rear axle's ground point (world frame), speed and current steering angle."""

    x: float
    y: float
    yaw: float
    speed: float
    steer: float = 0.0


def step(
    state: VehicleState, steer_cmd: float, accel_cmd: float, dt: float, p: VehicleParams
) -> VehicleState:
    """Advance one time step. Steering is rate- and angle-limited, like a real rack."""
    max_delta = p.max_steer_rate * dt
    steer = state.steer + max(-max_delta, min(max_delta, steer_cmd - state.steer))
    steer = max(-p.max_steer_rad, min(p.max_steer_rad, steer))
    accel = max(-p.max_decel, min(p.max_accel, accel_cmd))
    speed = max(0.0, state.speed + accel * dt)
    # Exact integration of the arc at constant steering over dt (exact on circles).
    yaw_rate = speed * math.tan(steer) / p.wheelbase_m
    if abs(yaw_rate) < 1e-9:
        x = state.x + speed * dt * math.cos(state.yaw)
        y = state.y + speed * dt * math.sin(state.yaw)
    else:
        radius = speed / yaw_rate
        x = state.x + radius * (math.sin(state.yaw + yaw_rate * dt) - math.sin(state.yaw))
        y = state.y - radius * (math.cos(state.yaw + yaw_rate * dt) - math.cos(state.yaw))
    yaw = state.yaw + yaw_rate * dt
    return VehicleState(x, y, yaw, speed, steer)
