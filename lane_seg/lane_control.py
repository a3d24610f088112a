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

import yaml

from lane_seg.errors import LaneSegError
from lane_seg.lane_geometry import LaneEstimate, poly

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
    lateral: str = "pure_pursuit"
    lookahead_min_m: float = 7.0  # pure pursuit: lookahead = max(min, time * speed)
    lookahead_time_s: float = 0.8
    stanley_gain: float = 1.2  # Stanley: steer = heading error + atan(gain * offset / speed)
    stanley_softening_mps: float = 2.0
    steer_filter: float = 0.6  # weight of the new steering command (1 = no smoothing)
    max_steer_deg: float = 35.0
    cruise_speed_mps: float = 20.0  # the scenario's speed replaces this
    max_lateral_accel: float = 2.5  # m/s^2: slow down for curves seen ahead
    accel_gain: float = 0.8  # 1/s: proportional speed control
    low_confidence: float = 0.3  # below this, slow down ...
    low_confidence_speed_factor: float = 0.6  # ... to this fraction of cruise
    stop_after_lost_s: float = 2.0  # lane lost this long: brake to a stop
    wheelbase_m: float = 2.8
    actuation_delay_s: float = 0.0  # camera frame -> command at the wheels (the loop's latency)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "controller config") -> ControllerConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise LaneSegError(f"{source}: unknown settings {unknown}; known: {sorted(fields)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls, key)
            if isinstance(default, str):
                values[key] = str(value)
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise LaneSegError(f"{source}: {key} must be a number, got {value!r}")
            else:
                values[key] = float(value)
        cfg = cls(**values)
        if cfg.lateral not in LATERAL:
            raise LaneSegError(f"{source}: lateral must be one of {', '.join(LATERAL)}")
        if cfg.actuation_delay_s < 0.0:
            raise LaneSegError(f"{source}: actuation_delay_s must be >= 0")
        if not 0.0 < cfg.steer_filter <= 1.0:
            raise LaneSegError(f"{source}: steer_filter must be in (0, 1]")
        return cfg

    def with_speed(self, cruise_speed_mps: float) -> ControllerConfig:
        return dataclasses.replace(self, cruise_speed_mps=float(cruise_speed_mps))

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> ControllerConfig:
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LaneSegError(f"cannot read controller config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise LaneSegError(f"{path}: expected a mapping of controller settings")
        return cls.from_dict(data, source=str(path))


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
