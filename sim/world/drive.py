"""A drive through one simulated world: the vehicle model moving, the camera rendering."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.control import pure_pursuit
from lane_seg.sim.world.render import render
from lane_seg.sim.world.road import Road, RoadShape
from lane_seg.sim.world.scene import Scene, SimConfig, place_vehicles, sample_scene
from lane_seg.sim.world.vehicle import VehicleParams, VehicleState, step
from lane_seg.sim.world.view import Pose

# Camera behind the windscreen, ahead of the rear axle (the vehicle model's reference point).
CAMERA_AHEAD_M = 1.6


class Command(NamedTuple):
    """What a driver asks of the vehicle: road-wheel angle (rad, + left) and acceleration."""

    steer: float
    accel: float


@dataclass
class DriveFrame:
    index: int
    time_s: float
    image: np.ndarray
    mask: np.ndarray
    state: VehicleState
    lateral_error_m: float  # camera ground point to the ego lane centre, + left
    s_m: float = 0.0  # arc length along the road of the camera ground point
    distance_m: float = 0.0  # driven so far (along the road)
    command: Command | None = None  # what the driver decided from this frame


# A driver sees each rendered frame (camera image, exact mask, vehicle state) and returns a
# steering angle (speed is then held by `speed_control`) or a full Command.
Steering = Callable[[DriveFrame, Scene, VehicleParams], "float | Command"]


def speed_control(speed: float, target: float, gain: float = 0.8) -> float:
    """Proportional acceleration command towards a target speed."""
    return gain * (target - speed)


def nominal_camera(cfg: SimConfig) -> Camera:
    return Camera.from_fov(
        cfg.width, cfg.height, 60.0, height_m=1.45, pitch_deg=2.5, x_m=CAMERA_AHEAD_M
    )


def build_world(seed: int, cfg: SimConfig, length_m: float = 1500.0) -> Scene:
    """A random world long enough for a drive of `length_m` (plus the road the camera sees)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    shape = RoadShape(
        length_m=length_m + cfg.draw_distance_m + 50.0, max_curvature=cfg.max_curvature
    )
    scene = sample_scene(rng, cfg, Road.random(rng, shape))
    place_vehicles(rng, cfg, scene, s_ego=30.0)
    return scene


def groundtruth_steering(frame: DriveFrame, scene: Scene, params: VehicleParams) -> float:
    """Pure pursuit on the true ego-lane centre: the reference driver."""
    state = frame.state
    lookahead = max(6.0, 0.9 * state.speed)
    s, _ = scene.road.locate(state.x, state.y, frame.s_m)
    tx, ty, _ = scene.road.pose(s + lookahead, scene.lane_center(scene.ego_lane))
    dx, dy = float(tx) - state.x, float(ty) - state.y
    c, sn = math.cos(state.yaw), math.sin(state.yaw)
    return pure_pursuit(c * dx + sn * dy, -sn * dx + c * dy, params.wheelbase_m)


def _traffic(scene: Scene, speed: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Start position and speed of each vehicle: ones in the ego lane pull away, never close."""
    out = []
    for box in scene.vehicles:
        in_ego_lane = abs(box.d - scene.lane_center(scene.ego_lane)) < scene.lane_width / 2
        v = speed * (rng.uniform(1.05, 1.25) if in_ego_lane else rng.uniform(0.8, 1.2))
        out.append((max(box.s, 45.0) if in_ego_lane else box.s, v))
    return out


def drive(
    scene: Scene,
    cam: Camera,
    seconds: float | None,
    fps: float = 15.0,
    speed_mps: float = 20.0,
    seed: int = 0,
    steering: Steering = groundtruth_steering,
    params: VehicleParams | None = None,
    distance_m: float | None = None,
    start_offset_m: float = 0.0,
    label: str = "paint",
) -> Iterator[DriveFrame]:
    """Render the drive frame by frame while `steering` controls the vehicle.

    The drive ends after `seconds`, after `distance_m` along the road, or at the end of the
    road, whichever comes first. Each frame carries the command the driver gave on it.
    `start_offset_m` starts the vehicle that far left of its lane centre (a recovery test).
    `label` is the convention of each frame's exact mask (render.render).
    """
    if seconds is None and distance_m is None:
        raise ValueError("drive needs seconds or distance_m")
    params = params or VehicleParams()
    traffic = _traffic(scene, speed_mps, np.random.default_rng(np.random.SeedSequence([seed, 9])))
    s_start = 20.0
    x, y, yaw = scene.road.pose(s_start, scene.lane_center(scene.ego_lane) + start_offset_m)
    state = VehicleState(float(x), float(y), float(yaw), speed_mps)
    dt = 1.0 / fps
    s_cam = s_start + cam.x_m
    frames = int(seconds * fps) if seconds is not None else 1 << 40
    for i in range(frames):
        rng = np.random.default_rng(np.random.SeedSequence([seed, i, 3]))
        for box, (s0, v) in zip(scene.vehicles, traffic, strict=True):
            box.s = s0 + v * i * dt
        pose = Pose(state.x, state.y, state.yaw)
        image, mask = render(
            scene, cam, pose, rng, motion_blur_probability=0.0, jpeg_probability=0.0, label=label
        )
        cx = state.x + math.cos(state.yaw) * cam.x_m
        cy = state.y + math.sin(state.yaw) * cam.x_m
        s_cam, d = scene.road.locate(cx, cy, s_cam)
        frame = DriveFrame(
            i,
            i * dt,
            image,
            mask,
            state,
            d - scene.lane_center(scene.ego_lane),
            s_cam,
            s_cam - s_start - cam.x_m,
        )
        if s_cam > scene.road.length - 260.0:
            yield frame
            return  # end of the road (the renderer needs road ahead)
        out = steering(frame, scene, params)
        if not isinstance(out, Command):
            out = Command(float(out), speed_control(state.speed, speed_mps))
        frame.command = out
        yield frame
        if distance_m is not None and frame.distance_m >= distance_m:
            return
        state = step(state, out.steer, out.accel, dt, params)
