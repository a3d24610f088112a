"""Pinhole camera on a vehicle, and the ground-plane geometry the simulator and IPM share.

Frames follow REP-103/105: the vehicle frame has x forward, y left, z up, its origin on the
ground below the camera; the camera's optical frame has x right, y down, z forward. Pitch is
positive when the camera looks down, yaw positive to the left, roll positive clockwise as seen
from behind the camera.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# Optical axes (right, down, forward) expressed in the camera body frame (forward, left, up).
_BODY_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Camera:
    """Intrinsics (pixels) and mounting (metres, degrees) of a camera on a vehicle."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float = 1.5
    pitch_deg: float = 2.0
    yaw_deg: float = 0.0
    roll_deg: float = 0.0
    x_m: float = 0.0  # mounting position ahead of the vehicle origin
    y_m: float = 0.0

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float, **mount: float) -> Camera:
        f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(width, height, f, f, (width - 1) / 2, (height - 1) / 2, **mount)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the conventional name)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def rotation(self) -> np.ndarray:
        """R such that p_optical = R @ (p_vehicle - position)."""
        body_in_vehicle = (
            _rot_z(math.radians(self.yaw_deg))
            @ _rot_y(math.radians(self.pitch_deg))
            @ _rot_x(math.radians(self.roll_deg))
        )
        return _BODY_TO_OPTICAL @ body_in_vehicle.T

    @property
    def position(self) -> np.ndarray:
        return np.array([self.x_m, self.y_m, self.height_m])

    def to_optical(self, points: np.ndarray) -> np.ndarray:
        """Vehicle-frame points (N,3) in the camera's optical frame (x right, y down, z ahead)."""
        return (np.asarray(points, dtype=np.float64) - self.position) @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vehicle-frame points (N,3) to pixels (N,2) and depth along the optical axis (N,)."""
        p = self.to_optical(points)
        z = p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.fx * p[:, 0] / z + self.cx
            v = self.fy * p[:, 1] / z + self.cy
        return np.stack([u, v], axis=1), z

    def rays(self, uv: np.ndarray) -> np.ndarray:
        """Unit-free viewing directions in the vehicle frame for pixels (N,2)."""
        uv = np.asarray(uv, dtype=np.float64)
        d_opt = np.stack(
            [(uv[:, 0] - self.cx) / self.fx, (uv[:, 1] - self.cy) / self.fy, np.ones(len(uv))],
            axis=1,
        )
        return d_opt @ self.rotation  # R^T applied to each row

    def pixel_to_ground(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Intersect pixel rays with the ground plane z=0: (N,2) points and a validity mask.

        Pixels at or above the horizon have no ground intersection (valid=False, point NaN).
        """
        d = self.rays(uv)
        valid = d[:, 2] < -1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(valid, -self.height_m / d[:, 2], np.nan)
        ground = self.position[:2] + d[:, :2] * t[:, None]
        return ground, valid

    def ground_homography(self) -> np.ndarray:
        """3x3 H mapping ground points (x, y, 1) in the vehicle frame to pixels (u, v, 1)."""
        r = self.rotation
        t = -r @ self.position
        return self.K @ np.column_stack([r[:, 0], r[:, 1], t])

    def horizon_v(self, u: float | None = None) -> float:
        """Image row of the horizon at column u (default: the principal point's column)."""
        u = self.cx if u is None else u
        # The horizon is the image of directions with zero vertical component: solve for v.
        r = self.rotation
        a = r.T[2]  # vehicle z-axis expressed in optical coordinates
        # a . ((u-cx)/fx, (v-cy)/fy, 1) = 0
        return self.cy - self.fy * (a[0] * (u - self.cx) / self.fx + a[2]) / a[1]
