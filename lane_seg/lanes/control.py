"""Lane keeping from an estimated lane centre: lateral (pure pursuit or Stanley) and speed control.

The controller sees only what perception estimated (`LaneEstimate`: the centre line in the
vehicle frame, its curvature and a confidence), never the simulator's ground truth, so the same
code drives the built-in simulator, CARLA and the ROS 2 controller node. Parameters live in
`config/controller.yaml`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lane_seg.lanes.geometry import poly
from lane_seg.lanes.tracker import LaneEstimate
from lane_seg.settings import from_mapping, load_yaml, setting

LATERAL = ("pure_pursuit", "stanley")


def pure_pursuit(target_x: float, target_y: float, wheelbase_m: float) -> float:
    """Steering angle that puts the rear axle on a circle through a target point.

    The target is given in the vehicle frame (x forward, y left) of the rear axle.
    """
    dist2 = target_x * target_x + target_y * target_y
    if dist2 < 1e-6:
        return 0.0
    curvature = 2.0 * target_y / dist2
    return math.atan(wheelbase_m * curvature)


@dataclass(frozen=True)
class ControllerConfig:
    """The controller's settings (config/controller.yaml; the controller node's parameters)."""

    lateral: str = setting("pure_pursuit", "lateral control law", choices=LATERAL)
    lookahead_min_m: float = setting(
        7.0, "pure pursuit: lookahead = max(this, lookahead_time_s * speed), m", range=(0.5, 100.0)
    )
    lookahead_time_s: float = setting(0.8, "pure pursuit: lookahead time, s", range=(0.0, 10.0))
    stanley_gain: float = setting(
        1.2, "Stanley: steer = heading error + atan(gain * offset / speed)", range=(0.0, 20.0)
    )
    stanley_softening_mps: float = setting(
        2.0, "Stanley: speed added in the denominator, m/s", range=(0.01, 50.0)
    )
    steer_filter: float = setting(
        0.6, "weight of each new steering command (1 = no smoothing)", range=(0.01, 1.0)
    )
    max_steer_deg: float = setting(35.0, "road-wheel angle limit, degrees", range=(1.0, 90.0))
    cruise_speed_mps: float = setting(
        20.0, "cruise speed, m/s (`lane-seg sim` uses the scenario's)", range=(0.0, 70.0)
    )
    max_lateral_accel: float = setting(
        2.5, "slow down to keep speed^2 * curvature ahead below this, m/s^2", range=(0.1, 20.0)
    )
    accel_gain: float = setting(0.8, "proportional speed control gain, 1/s", range=(0.0, 10.0))
    low_confidence: float = setting(
        0.3, "below this lane confidence, drive slower ...", range=(0.0, 1.0)
    )
    low_confidence_speed_factor: float = setting(
        0.6, "... at this fraction of cruise speed", range=(0.0, 1.0)
    )
    stop_after_lost_s: float = setting(
        2.0, "lane lost this long: brake to a stop, s", range=(0.0, 60.0)
    )
    wheelbase_m: float = setting(2.8, "vehicle wheelbase, m", range=(0.5, 10.0))
    actuation_delay_s: float = setting(
        0.0,
        "camera frame -> command at the wheels, s (simulated in `lane-seg sim`)",
        range=(0.0, 5.0),
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "controller config") -> ControllerConfig:
        return from_mapping(cls, data, source)

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> ControllerConfig:
        """The defaults, with any subset overridden by a YAML file (or a ROS 2 parameter file,
        like the shipped `config/controller.yaml`)."""
        return cls() if path is None else load_yaml(cls, path, "controller config")

    def with_speed(self, cruise_speed_mps: float) -> ControllerConfig:
        return dataclasses.replace(self, cruise_speed_mps=float(cruise_speed_mps))


def lateral_command(est: LaneEstimate, speed: float, cfg: ControllerConfig) -> float:
    """Road-wheel angle (rad, + left) that steers the vehicle onto the estimated centre line."""
    c = est.center
    if cfg.lateral == "stanley":
        xf = cfg.wheelbase_m  # the front axle, ahead of the rear-axle origin
        offset = float(poly(c, xf))  # centre line to the left of the front axle: + = steer left
        heading = math.atan(float(c[1] + 2.0 * c[2] * xf))
        soft = max(speed, 0.0) + cfg.stanley_softening_mps
        steer = heading + math.atan2(cfg.stanley_gain * offset, soft)
    else:
        look = max(cfg.lookahead_min_m, cfg.lookahead_time_s * speed)
        steer = pure_pursuit(look, float(poly(c, look)), cfg.wheelbase_m)
    limit = math.radians(cfg.max_steer_deg)
    return max(-limit, min(limit, steer))


def target_speed(est: LaneEstimate | None, lost_s: float, cfg: ControllerConfig) -> float:
    """Cruise, slower for curves ahead and while perception is unsure, zero once it is lost."""
    if lost_s >= cfg.stop_after_lost_s:
        return 0.0
    v = cfg.cruise_speed_mps
    if est is None:  # lost for a moment: coast on the last steering, slower
        return v * cfg.low_confidence_speed_factor
    k = abs(est.curvature)
    if k > 1e-6:
        v = min(v, math.sqrt(cfg.max_lateral_accel / k))
    if est.confidence < cfg.low_confidence:
        v *= cfg.low_confidence_speed_factor
    return v


class LaneController:
    """Stateful controller: filtered steering, and how long the lane has been lost."""

    def __init__(self, cfg: ControllerConfig, min_confidence: float = 0.05) -> None:
        self.cfg = cfg
        self.min_confidence = min_confidence
        self.steer = 0.0
        self.lost_s = 0.0

    def update(self, est: LaneEstimate | None, speed: float, dt: float) -> tuple[float, float]:
        """(steer rad, target speed m/s) for this frame."""
        usable = est is not None and est.confidence >= self.min_confidence
        self.lost_s = 0.0 if usable else self.lost_s + dt
        if usable:
            raw = lateral_command(est, speed, self.cfg)
            a = self.cfg.steer_filter
            self.steer = a * raw + (1.0 - a) * self.steer
        return self.steer, target_speed(est if usable else None, self.lost_s, self.cfg)

    def accel(self, speed: float, target: float) -> float:
        return self.cfg.accel_gain * (target - speed)
