"""Reading a lane mask: the vanishing point of its strokes (straight and on a bend, not from one
line), and which components are not lane lines (round blobs, stop lines; not merged strokes)."""

from __future__ import annotations

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.mask import (
    GroundPlane,
    band_pieces,
    binary_mask,
    camera_vanishing_point,
    estimate_vanishing_point,
    line_components,
    measure,
    row_runs,
)

CAM = Camera.from_fov(512, 256, 60.0, height_m=1.5, pitch_deg=3.0, yaw_deg=1.5)
SIZE = (512, 256)


def draw(lines: list, x_max: float = 80.0, cam: Camera = CAM) -> np.ndarray:
    """Ground lines y(x) drawn into the image, at least 2 px wide."""
    mask = np.zeros((cam.height, cam.width), np.uint8)
    xs = np.geomspace(1.0, x_max, 400)
    for line in lines:
        uv, depth = cam.project(np.column_stack([xs, line(xs), np.zeros_like(xs)]))
        for k in np.flatnonzero((depth[:-1] > 0) & (depth[1:] > 0)):
            thick = max(2, round(0.15 * cam.fx / xs[k]))
            a, b = (tuple(int(v) for v in np.rint(p * 16)) for p in (uv[k], uv[k + 1]))
            cv2.line(mask, a, b, 255, thick, cv2.LINE_8, 4)
    return mask


def vanishing_point(mask: np.ndarray):
    binary = binary_mask(mask, SIZE)
    runs = row_runs(binary)
    return estimate_vanishing_point(measure(runs, *band_pieces(binary, runs, 16)), SIZE)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    binary = binary_mask(mask, SIZE)
    runs = row_runs(binary)
    n, comps = cv2.connectedComponents(binary, connectivity=8)
    shapes = measure(runs, comps[runs.row, runs.start], n)
    keep = line_components(shapes, GroundPlane(CAM), camera_vanishing_point(CAM)[1])
    return comps, keep


def test_vanishing_point_of_straight_lines():
    true = np.array(camera_vanishing_point(CAM))
    got = vanishing_point(draw([lambda x, o=o: np.full_like(x, o) for o in (5.25, 1.75, -1.75)]))
    np.testing.assert_allclose(got, true, atol=1.0)


def test_horizon_row_on_a_bend():
    """Tangents of the two lines at one distance meet on the horizon even on a bend."""
    bend = [lambda x, o=o: o + x * x / 300.0 for o in (1.75, -1.75)]
    got = vanishing_point(draw(bend, x_max=50))
    assert abs(got[1] - camera_vanishing_point(CAM)[1]) < 2.0


def test_no_vanishing_point_from_one_line_or_none():
    assert vanishing_point(draw([lambda x: np.full_like(x, 1.75)])) is None
    assert vanishing_point(np.zeros((256, 512), np.uint8)) is None


def test_blobs_and_stop_lines_are_not_lane_lines_merged_strokes_are():
    mask = draw([lambda x, o=o: np.full_like(x, o) for o in (1.75, -1.75)], x_max=300)
    u, v = (int(c) for c in camera_vanishing_point(CAM))
    cv2.rectangle(mask, (u - 8, v + 1), (u + 8, v + 4), 255, -1)
    cv2.circle(mask, (420, 200), 12, 255, -1)  # a round blob
    # A stop line across the lane 12 m ahead, 0.4 m deep, not touching the lane lines.
    corners = np.array([[12.0, -1.4, 0], [12.0, 1.4, 0], [12.4, 1.4, 0], [12.4, -1.4, 0]])
    uv, _ = CAM.project(corners)
    cv2.fillConvexPoly(mask, np.rint(uv).astype(np.int32), 255)
    centre = np.rint(uv.mean(axis=0)).astype(int)
    comps, keep = components(mask)
    assert not keep[comps[200, 420]]  # the blob
    stop = comps[centre[1], centre[0]]
    assert stop > 0 and not keep[stop]
    # The two lane lines meet near the horizon (as in a model's mask): one component of two
    # strokes, not judged as one shape, kept.
    bottom_row = np.flatnonzero(comps[250])
    lines = set(comps[250, bottom_row]) - {comps[200, 420]}
    assert len(lines) == 1 and keep[lines.pop()]
