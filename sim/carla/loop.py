"""The closed loop against CARLA: camera -> mask -> lane geometry -> carla.VehicleControl.

Synchronous mode at a fixed step (the server waits for our tick, so a slow model never makes
the world run ahead of the controller). The world's settings are restored and every actor we
spawned is destroyed on every exit path: the connection, synchronous-mode and actor helpers are
the CARLA collector's (`client.connect`, `sync.synchronous`, `ActorPool`, `FramePairer`,
`spawn`). Ground-truth perception reads RoadLine from a semantic camera at the same
mount, with the tag scheme chosen from the server's version.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.control import ControllerConfig, LaneController
from lane_seg.lanes.geometry import poly
from lane_seg.lanes.tracker import LaneTracker
from lane_seg.sim.carla.client import connect, load_town, vehicle_blueprints
from lane_seg.sim.carla.labels import bgra_to_mask, bgra_to_rgb, tag_scheme
from lane_seg.sim.carla.options import DriveConfig, Servers
from lane_seg.sim.carla.spawn import attach_cameras, spawn_ego
from lane_seg.sim.carla.sync import ActorPool, synchronous
from lane_seg.sim.loop.closed_loop import GroundTruthPerception, frame_lanes
from lane_seg.sim.loop.metrics import (
    FrameLog,
    aggregate,
    drive_metrics,
    json_clean,
    mask_iou,
)

WIDTH, HEIGHT, FOV = 512, 256, 60.0
CAM_X, CAM_Z, CAM_PITCH = 1.6, 1.45, 2.5  # metres ahead of / above the vehicle origin, degrees
DELTA_S = 0.1  # 10 Hz, the built-in simulator's scenario rate


def carla_camera() -> Camera:
    """Our camera model (REP-103, y left) for the mount used here."""
    return Camera.from_fov(WIDTH, HEIGHT, FOV, height_m=CAM_Z, pitch_deg=CAM_PITCH, x_m=CAM_X)


def to_vehicle_control(carla: Any, steer_rad: float, accel: float, max_steer_deg: float) -> Any:
    """Our command (steer + left, acceleration m/s^2) as carla.VehicleControl.

    CARLA's y axis points right, so a left turn is a negative steer; its steer is normalised by
    the front wheels' maximum angle. Throttle and brake map acceleration linearly.
    """
    steer = -math.degrees(steer_rad) / max(max_steer_deg, 1.0)
    throttle = min(1.0, max(0.0, accel / 3.0))
    brake = min(1.0, max(0.0, -accel / 6.0))
    return carla.VehicleControl(
        throttle=float(throttle), steer=float(max(-1.0, min(1.0, steer))), brake=float(brake)
    )


def lane_error(carla_map: Any, transform: Any) -> tuple[float, float]:
    """(lateral offset from the lane centre, + left; lane width) at the camera's ground point."""
    loc = transform.location
    fwd = transform.get_forward_vector()
    cam = type(loc)(x=loc.x + fwd.x * CAM_X, y=loc.y + fwd.y * CAM_X, z=loc.z)
    wp = carla_map.get_waypoint(cam)
    c = wp.transform.location
    right = wp.transform.get_right_vector()
    # CARLA's right vector points right; + left in our convention
    return -((cam.x - c.x) * right.x + (cam.y - c.y) * right.y), float(wp.lane_width)


def run_carla(
    at: Servers, drive: DriveConfig, perception: Any, ctrl: ControllerConfig, out: Path
) -> dict[str, Any]:
    """Drive a CARLA vehicle on the first server of `at` for `drive.seconds` from its camera;
    metrics to out/metrics.json."""
    import carla

    client, version = connect(at.host, at.ports[0], at.timeout)
    world = load_town(client, drive.town, at.timeout) if drive.town else client.get_world()
    scheme = tag_scheme(version)
    cam = carla_camera()
    groundtruth = isinstance(perception, GroundTruthPerception)
    tracker = LaneTracker()
    controller = LaneController(ctrl, tracker.cfg.min_confidence)
    log: list[FrameLog] = []
    rng = random.Random(drive.seed)
    end_reason = "time"
    widths: list[float] = []
    with synchronous(world, None, DELTA_S), ActorPool() as pool:
        carla_map = world.get_map()
        vehicles = vehicle_blueprints(world.get_blueprint_library(), "vehicle.*")
        ego, _ = spawn_ego(world, pool, rng, vehicles)
        max_steer = float(ego.get_physics_control().wheels[0].max_steer_angle)
        mount = carla.Transform(carla.Location(x=CAM_X, z=CAM_Z), carla.Rotation(pitch=-CAM_PITCH))
        # The semantic camera gives ground-truth perception, and the IoU of a model's masks.
        pairer = attach_cameras(world, pool, ego, mount, WIDTH, HEIGHT, FOV)
        prev = None
        for i in range(int(drive.seconds / DELTA_S)):
            frame = world.tick(at.timeout)
            data = pairer.wait(frame, at.timeout)
            rgb = bgra_to_rgb(data["rgb"].raw_data, WIDTH, HEIGHT)
            truth = bgra_to_mask(data["seg"].raw_data, WIDTH, HEIGHT, scheme)
            mask = perception(rgb, truth)
            tf = ego.get_transform()
            yaw = -math.radians(tf.rotation.yaw)  # to a left-handed-free, y-left frame
            pose = (tf.location.x, -tf.location.y, yaw)
            motion = None
            if prev is not None:
                dx, dy = pose[0] - prev[0], pose[1] - prev[1]
                c, s = math.cos(prev[2]), math.sin(prev[2])
                dyaw = math.atan2(math.sin(pose[2] - prev[2]), math.cos(pose[2] - prev[2]))
                motion = (c * dx + s * dy, -s * dx + c * dy, dyaw)
            prev = pose
            est = tracker.update(frame_lanes(perception, mask, cam), motion)
            v = ego.get_velocity()
            speed = math.hypot(v.x, v.y)
            steer, v_target = controller.update(est, speed, DELTA_S)
            ego.apply_control(
                to_vehicle_control(carla, steer, controller.accel(speed, v_target), max_steer)
            )
            err, width = lane_error(carla_map, tf)
            widths.append(width)
            ok = est is not None and est.confidence >= tracker.cfg.min_confidence
            log.append(
                FrameLog(
                    t=i * DELTA_S,
                    s=0.0,
                    distance=sum(f.speed for f in log) * DELTA_S,
                    x=pose[0],
                    y=pose[1],
                    yaw=yaw,
                    speed=speed,
                    steer_cmd=steer,
                    steer_applied=steer,
                    lateral_error=err,
                    est_offset=-float(poly(est.center, CAM_X)) if ok else math.nan,
                    confidence=est.confidence if est is not None else 0.0,
                    lines_found=est.lines_found if est is not None else 0,
                    perception_ms=getattr(perception, "last_ms", 0.0),
                    geometry_ms=0.0,
                    mask_iou=math.nan if groundtruth else mask_iou(mask, truth),
                )
            )
            if abs(err) > width / 2 + 1.0:
                end_reason = "left the lane"
                break
    metrics = drive_metrics(log, float(np.median(widths)) if widths else 3.5, 1.0 / DELTA_S)
    metrics.update(server=version, end_reason=end_reason, completed=end_reason == "time")
    report = {
        "backend": "carla",
        "perception": getattr(perception, "name", ""),
        "summary": aggregate([metrics]),
        "worlds": [metrics],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(json_clean(report), indent=2))
    return report
