"""Lane-line labels in the convention of CULane and TuSimple, from the simulator's geometry.

Those benchmarks label a lane *line*, not its paint: one polyline of constant image width per
marked lane boundary, drawn continuously through the gaps of dashed paint and behind vehicles,
for the ego lane's two boundaries and the next boundary on each side. The simulator knows
where every boundary is, so it can draw exactly that: each chosen boundary's centre is sampled
along the road, projected through the camera, and drawn `width_px` wide up to the distance at
which the camera can still make the road out (haze, fog, the reach of headlights at night).
Unmarked boundaries (an edge where asphalt meets the shoulder) get no line, as in the
benchmarks. The paint mask (`render`'s other label) stays the exact per-pixel paint.
"""

from __future__ import annotations

import math

import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.view import Pose

STEP_M = 0.5  # sampling step along the road; far points are a fraction of a pixel apart
NEAREST_M = 0.3  # points closer to the camera plane than this are not projected
NIGHT_REACH_M = 70.0  # headlights only
NIGHT_LIT_REACH_M = 130.0  # with street lights
FOG_REACH = 1.2  # x fog distance: where exp(-d/fog) falls to 0.3, as the paint mask's cut
# Annotators stop a line where it can no longer be told from its neighbours: here, where the
# ego lane is narrower in the image than SEPARATION label widths (and never beyond 100 m,
# where a bend runs along the horizon).
MAX_REACH_M = 100.0
SEPARATION = 4.0


def ego_lane_at(scene: Scene, d: float) -> int:
    """The lane (0 = rightmost) that lateral offset d (metres left of the centre line) is in."""
    lane = math.floor((d + scene.half_width) / scene.lane_width)
    return min(max(lane, 0), scene.n_lanes - 1)


def labelled_boundaries(scene: Scene, ego_lane: int, per_side: int = 2) -> list[float]:
    """Offsets of the marked boundaries nearest the ego lane, `per_side` on each side."""
    right = range(ego_lane, ego_lane - per_side, -1)
    left = range(ego_lane + 1, ego_lane + 1 + per_side)
    offsets = []
    for i in (*right, *left):
        if 0 <= i < len(scene.boundaries) and scene.boundaries[i]:
            stripes = scene.boundaries[i]
            offsets.append(float(np.mean([st.offset for st in stripes])))
    return offsets


def reach_m(scene: Scene, cam: Camera, draw_distance: float, width_px: float) -> float:
    """How far ahead a lane line is labelled: while lines are apart in the image and the
    camera can make the road out (the paint mask's visibility cut)."""
    apart = cam.fx * scene.lane_width / (SEPARATION * width_px)
    reach = min(MAX_REACH_M, apart, 0.8 * draw_distance)  # haze: the far road meets the sky
    if scene.weather["fog_m"]:
        reach = min(reach, FOG_REACH * scene.weather["fog_m"])
    if scene.light["time"] == "night":
        lit = scene.light["street_lights"]
        reach = min(reach, NIGHT_LIT_REACH_M if lit else NIGHT_REACH_M)
    return reach


def line_polylines(
    scene: Scene,
    cam: Camera,
    pose_xy_yaw: tuple[float, float, float],
    s_ego: float,
    offsets: list[float],
    reach: float,
) -> list[np.ndarray]:
    """Each boundary's centre as image points (N, 2), near to far, in front of the camera."""
    x0, y0, yaw = pose_xy_yaw
    s = np.arange(max(0.0, s_ego - 2.0), min(scene.road.length, s_ego + reach), STEP_M)
    c, sn = math.cos(yaw), math.sin(yaw)
    lines = []
    for d in offsets:
        wx, wy, _ = scene.road.pose(s, d)
        dx, dy = wx - x0, wy - y0
        pts = np.stack([c * dx + sn * dy, -sn * dx + c * dy, np.zeros_like(dx)], axis=1)
        uv, z = cam.project(pts)
        keep = (z > NEAREST_M) & (np.hypot(pts[:, 0], pts[:, 1]) < reach)
        if keep.sum() >= 2:
            lines.append(uv[keep])
    return lines


def label_lines(
    scene: Scene,
    cam: Camera,
    pose: Pose,
    s_ego: float | None,
    draw_distance: float,
    width_px: float,
    per_side: int = 2,
) -> list[np.ndarray]:
    """The "lines" label's polylines: the ego lane's marked boundaries and
    `per_side` more on each side seen from `pose` (`s_ego` along the road, found when None),
    near to far, as far as the camera makes them out."""
    if s_ego is None:
        s_ego, _ = scene.road.locate(pose.x, pose.y)
    _, d_ego = scene.road.locate(pose.x, pose.y, s_ego)
    ego = ego_lane_at(scene, d_ego)
    offsets = labelled_boundaries(scene, ego, per_side)
    reach = reach_m(scene, cam, draw_distance, width_px)
    xy_yaw = (pose.x, pose.y, pose.yaw)
    return line_polylines(scene, cam, xy_yaw, s_ego, offsets, reach)
