"""Where each pixel of the camera looks: the ground point it sees, in Frenet (s, d) on the road
at the ego pose, with its footprint there, or the sky's direction.

Every pixel below the horizon is cast onto the ground plane and converted to Frenet (s, d)
coordinates on the road, so the surface, the markings and their mask (`surface`) are functions
of (s, d) and image and mask come from the same geometry by construction. A pixel's footprint on
the ground (|ds/du|+|ds/dv|, |dd/du|+|dd/dv|) is what the markings are box-filtered over.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world.scene import Scene


@dataclass(frozen=True)
class Pose:
    """Ego pose in the world: the ground point below the camera and the vehicle's heading."""

    x: float
    y: float
    yaw: float


def ego_pose(scene: Scene, s: float, d: float, heading_offset: float = 0.0) -> Pose:
    x, y, h = scene.road.pose(s, d)
    return Pose(float(x), float(y), float(h) + heading_offset)


@functools.lru_cache(maxsize=8)
def _pixel_rays(cam: Camera) -> np.ndarray:
    """Viewing directions (H*W, 3) in the vehicle frame; cached, a drive keeps its camera."""
    r = cam.rotation
    xn = ((np.arange(cam.width) - cam.cx) / cam.fx)[None, :]
    yn = ((np.arange(cam.height) - cam.cy) / cam.fy)[:, None]
    rays = np.empty((cam.height, cam.width, 3), np.float32)
    for k in range(3):
        rays[..., k] = xn * r[0, k] + yn * r[1, k] + r[2, k]
    rays.flags.writeable = False
    return rays.reshape(-1, 3)


class _View:
    """Everything about the pixels that depends on the camera alone (not on where the car is):
    which pixels see the ground, where on the ground (vehicle frame), how far, the ground
    derivatives for footprints, and the sky pixels' angles. Cached: a drive keeps its camera."""

    def __init__(self, cam: Camera, draw_distance: float):
        rays = _pixel_rays(cam)
        dz = rays[:, 2]
        with np.errstate(divide="ignore"):
            t = np.where(dz < -1e-6, -cam.height_m / np.minimum(dz, -1e-6), np.inf)
        dist = t * np.linalg.norm(rays, axis=1)
        ground = dist < draw_distance
        self.g = np.flatnonzero(ground)
        self.sky_idx = np.flatnonzero(~ground)
        r, tg = rays[self.g], t[self.g]
        self.gx, self.gy = cam.x_m + r[:, 0] * tg, cam.y_m + r[:, 1] * tg
        self.dist = dist[self.g]
        self.lateral = np.abs(np.arctan2(r[:, 1], r[:, 0]))
        # d(ground x, y)/d(u, v) from the inverse ground homography, for pixel footprints.
        u, v = self.g % cam.width, self.g // cam.width
        hinv = np.linalg.inv(cam.ground_homography()).astype(np.float32)
        w = hinv[2, 0] * u + hinv[2, 1] * v + hinv[2, 2]
        self.dx_du = (hinv[0, 0] - self.gx * hinv[2, 0]) / w
        self.dx_dv = (hinv[0, 1] - self.gx * hinv[2, 1]) / w
        self.dy_du = (hinv[1, 0] - self.gy * hinv[2, 0]) / w
        self.dy_dv = (hinv[1, 1] - self.gy * hinv[2, 1]) / w
        rs = rays[self.sky_idx]
        self.sky_el = np.arctan2(rs[:, 2], np.hypot(rs[:, 0], rs[:, 1]))
        self.sky_az = np.arctan2(rs[:, 1], rs[:, 0])


@functools.lru_cache(maxsize=4)
def _view(cam: Camera, draw_distance: float) -> _View:
    return _View(cam, draw_distance)


class FrameGeometry:
    """One frame's geometry: the camera's view placed at the ego pose, in Frenet (s, d) on the
    road, with each ground pixel's footprint along s and d."""

    def __init__(self, scene: Scene, cam: Camera, pose: Pose, draw_distance: float):
        self.shape = (cam.height, cam.width)
        view = _view(cam, draw_distance)
        self.g, self.sky_idx = view.g, view.sky_idx
        self.dist, self.lateral = view.dist, view.lateral
        self.sky_el, self.sky_az = view.sky_el, view.sky_az
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        wx = pose.x + c * view.gx - s * view.gy
        wy = pose.y + s * view.gx + c * view.gy
        self.s_ego, _ = scene.road.locate(pose.x, pose.y)  # any distance along the road
        s_map, d_map, ok = scene.road.frenet(wx, wy, self.s_ego + view.gx, iterations=3)
        self.on_road_geom = ok
        self.s = s_map.astype(np.float32)
        self.d = np.where(ok, d_map, 1e3).astype(np.float32)
        # Footprints: rotate the ground derivatives into the road's direction at each pixel.
        phi = scene.road.heading_near(self.s) - pose.yaw
        cp, sp = np.cos(phi), np.sin(phi)
        ds_du, ds_dv = cp * view.dx_du + sp * view.dy_du, cp * view.dx_dv + sp * view.dy_dv
        dd_du, dd_dv = -sp * view.dx_du + cp * view.dy_du, -sp * view.dx_dv + cp * view.dy_dv
        self.foot_s = (np.abs(ds_du) + np.abs(ds_dv) + 1e-4).astype(np.float32)
        self.foot_d = (np.abs(dd_du) + np.abs(dd_dv) + 1e-4).astype(np.float32)
