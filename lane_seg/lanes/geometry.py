"""Lane lines on the road: quadratics y(x) in the vehicle frame, and cameras scaled to a mask.

Vehicle frame (REP-103): x forward, y left, metres, origin where `Camera` puts it (the vehicle
reference point; `Camera.x_m` is the camera's mounting ahead of it). The grouping
(`lane_seg.lanes.grouping`) fits `LineFit`s, the tracker (`lane_seg.lanes.tracker`) filters
them over time and the controller (`lane_seg.lanes.control`) steers along their centre.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lane_seg.camera import Camera

Coeffs = np.ndarray  # (c0, c1, c2) of y(x) = c0 + c1 x + c2 x^2, metres


@dataclass
class LineFit:
    """One lane line on the ground, y(x) = c0 + c1 x + c2 x^2, and how well its points fit."""

    coeffs: Coeffs
    inliers: int
    span_m: float  # extent along x of the inliers
    rms_m: float
    quality: float  # 0..1
    pts: np.ndarray | None = dataclasses.field(default=None, repr=False)  # its inlier points

    def y(self, x: np.ndarray | float) -> np.ndarray | float:
        return poly(self.coeffs, x)


def poly(c: Coeffs, x: np.ndarray | float) -> np.ndarray | float:
    return c[0] + c[1] * x + c[2] * x * x


def center_points(
    center: Coeffs, length_m: float = 30.0, step_m: float = 1.0, start_m: float = 0.0
) -> list[tuple[float, float]]:
    """(x, y) points of a centre line, evenly spaced along x: the poses of a nav_msgs/Path."""
    xs = np.arange(start_m, length_m + 1e-9, step_m)
    return [(float(x), float(poly(center, x))) for x in xs]


# --------------------------------------------------------------------------- cameras


def camera_for_shape(cam: Camera, height: int, width: int) -> Camera:
    """The camera with its intrinsics scaled to a mask of another resolution."""
    if (height, width) == (cam.height, cam.width):
        return cam
    sx, sy = width / cam.width, height / cam.height
    return dataclasses.replace(
        cam,
        width=width,
        height=height,
        fx=cam.fx * sx,
        fy=cam.fy * sy,
        cx=(cam.cx + 0.5) * sx - 0.5,
        cy=(cam.cy + 0.5) * sy - 0.5,
    )


def camera_from_camera_info(k: Sequence[float], width: int, height: int, **mount: float) -> Camera:
    """A Camera from a sensor_msgs/CameraInfo-style K (row-major 3x3) and fixed extrinsics.

    `mount` takes Camera's mounting fields: height_m, pitch_deg, yaw_deg, roll_deg, x_m, y_m.
    Lens distortion is ignored (rectified images, or small distortion near the image centre).
    """
    k = [float(v) for v in k]
    if len(k) != 9 or k[0] <= 0 or k[4] <= 0:
        raise ValueError(f"K must be 9 numbers with fx, fy > 0, got {k}")
    return Camera(int(width), int(height), k[0], k[4], k[2], k[5], **mount)
