"""Lane lines as the node's messages carry them, without rclpy (bag replay writes them with
rosbags): each line's points in the camera's optical frame and the look of its RViz marker.

A line's points are its ground points (`LaneInstance.ground`, metres on the road) in the
camera's optical frame (x right, y down, z ahead: the frame of the image's header), near to
far, each with an orientation whose x axis points along the line. Lines without ground points
(the camera is not known yet) have no geometry and are not published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.extract import EGO_LEFT, EGO_RIGHT, LaneInstance
from lane_seg.visualize import EGO_LINE_RGB, LINE_RGB

MARKER_WIDTH_M = 0.15  # LINE_STRIP width: a painted line's
MARKER_NS = {EGO_LEFT: "ego_left", EGO_RIGHT: "ego_right", None: "lane"}


@dataclass(frozen=True)
class LineGeometry:
    positions: np.ndarray  # (N, 3) metres in the optical frame, near to far
    orientations: np.ndarray  # (N, 4) quaternions x, y, z, w along the line
    ego: str | None
    confidence: float

    @property
    def marker_ns(self) -> str:
        return MARKER_NS[self.ego]

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        """The overlay's colour of the line (ego orange, others blue), opaque."""
        r, g, b = EGO_LINE_RGB if self.ego else LINE_RGB
        return r / 255, g / 255, b / 255, 1.0


def _along(p: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, z, w: the rotation taking the x axis onto the direction of travel along
    the polyline at each point (central differences)."""
    d = np.gradient(p, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    # Half-way quaternion between x = (1, 0, 0) and d: (x cross d, 1 + x . d), normalised.
    q = np.column_stack([np.zeros(len(d)), -d[:, 2], d[:, 1], 1.0 + d[:, 0]])
    n = np.linalg.norm(q, axis=1, keepdims=True)
    flip = n[:, 0] < 1e-9  # d = -x: half a turn about z
    q[flip] = (0.0, 0.0, 1.0, 0.0)
    n[flip] = 1.0
    return q / n


def lines_in_camera(lanes: Sequence[LaneInstance], camera: Camera) -> list[LineGeometry]:
    """The lines with ground points, left to right as given, in `camera`'s optical frame."""
    out = []
    for lane in lanes:
        if lane.ground is None:
            continue
        g = lane.ground[::-1]  # points run top to bottom in the image: far to near
        g = g[np.isfinite(g).all(axis=1)]
        if len(g) < 2:
            continue
        p = camera.to_optical(np.column_stack([g, np.zeros(len(g))]))
        out.append(LineGeometry(p, _along(p), lane.ego, lane.confidence))
    return out
