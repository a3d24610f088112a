"""The ego lane from the one lane step: IPM round trip, lane lines on the ground from synthetic
masks (noise, dashes, missing lines), ego-lane choice, tracking (hold, decay, jump gate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lane_seg.camera import Camera
from lane_seg.lanes.extract import extract_lanes
from lane_seg.lanes.geometry import camera_for_shape, camera_from_camera_info, center_points, poly
from lane_seg.lanes.tracker import LaneEstimate, LaneTracker, TrackerConfig, move_coeffs

CAM = Camera.from_fov(512, 256, 60.0, height_m=1.45, pitch_deg=2.5, x_m=1.6)


def track(tracker: LaneTracker, mask: np.ndarray, cam: Camera = CAM) -> LaneEstimate | None:
    """One frame as the node and the closed loop run it: the lane step, then the tracker."""
    return tracker.update(extract_lanes(mask, camera=cam))


def _ground_of_pixels(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0 : cam.height, 0 : cam.width]
    g, ok = cam.pixel_to_ground(np.stack([u.ravel(), v.ravel()], 1).astype(float))
    return g, ok


def synthetic_mask(
    cam: Camera,
    offset: float = 0.0,
    heading: float = 0.0,
    curvature: float = 0.0,
    width: float = 3.5,
    lines: tuple[str, ...] = ("left", "right"),
    dashed: tuple[str, ...] = (),
    line_width: float = 0.15,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Exact mask of lane lines y(x) = c +- w/2, the centre at `offset` left of the vehicle."""
    g, ok = _ground_of_pixels(cam)
    x, y = g[:, 0], g[:, 1]
    centre = offset + math.tan(heading) * x + 0.5 * curvature * x * x
    mask = np.zeros(len(x), bool)
    for side in lines:
        c = centre + (width / 2 if side == "left" else -width / 2)
        on = ok & (np.abs(y - c) < line_width / 2) & (x < 60)
        if side in dashed:
            on &= np.mod(x, 9.0) < 3.0
        mask |= on
    mask = mask.reshape(cam.height, cam.width).astype(np.uint8) * 255
    if noise:
        rng = np.random.default_rng(seed)
        speckle = rng.random(mask.shape) < noise
        mask[speckle] = 255 - mask[speckle]
    return mask


# --------------------------------------------------------------------------- IPM


@pytest.mark.parametrize(
    "mount",
    [
        {"height_m": 1.45, "pitch_deg": 2.5, "x_m": 1.6},
        {"height_m": 1.8, "pitch_deg": 6.0, "yaw_deg": 2.0, "roll_deg": -1.0, "y_m": 0.3},
    ],
)
def test_ipm_round_trip(mount):
    cam = Camera.from_fov(640, 360, 70.0, **mount)
    pts = np.array([[6.0, 0.0], [12.0, -1.75], [25.0, 3.0], [40.0, -4.0]])
    uv, depth = cam.project(np.column_stack([pts, np.zeros(len(pts))]))
    assert (depth > 0).all()
    back, valid = cam.pixel_to_ground(uv)
    assert valid.all()
    np.testing.assert_allclose(back, pts, atol=1e-6)
    # ground_homography agrees with project
    h = cam.ground_homography() @ np.column_stack([pts, np.ones(len(pts))]).T
    np.testing.assert_allclose((h[:2] / h[2]).T, uv, atol=1e-6)


def test_a_lines_ground_fit_lies_on_the_painted_line():
    mask = synthetic_mask(CAM, lines=("right",), width=3.5)
    (lane,) = extract_lanes(mask, camera=CAM)
    fit = lane.fit
    assert fit is not None and fit.inliers > 60
    # its points lie on y = -1.75 within half the line width plus a pixel's footprint
    assert np.abs(fit.pts[:, 1] + 1.75).max() < 0.075 + 0.35
    assert abs(float(fit.y(10.0)) + 1.75) < 0.03 and abs(fit.coeffs[1]) < 0.003
    assert extract_lanes(mask)[0].fit is None  # without the camera the ground is not metric


def test_camera_info_and_scaled_masks():
    k = [CAM.fx, 0, CAM.cx, 0, CAM.fy, CAM.cy, 0, 0, 1]
    cam = camera_from_camera_info(k, 512, 256, height_m=1.45, pitch_deg=2.5, x_m=1.6)
    assert cam == CAM
    with pytest.raises(ValueError):
        camera_from_camera_info([1, 2, 3], 512, 256)
    half = camera_for_shape(CAM, 128, 256)
    p = np.array([[15.0, 1.2, 0.0]])
    uv_full, _ = CAM.project(p)
    uv_half, _ = half.project(p)
    np.testing.assert_allclose((uv_half + 0.5) * 2 - 0.5, uv_full, atol=1e-9)
    # a half-resolution mask gives the same lane as the full one
    full = synthetic_mask(CAM, offset=0.3)
    small = synthetic_mask(half, offset=0.3)
    a = track(LaneTracker(), full)
    b = track(LaneTracker(), small, half)
    assert abs(a.lateral_offset_m - b.lateral_offset_m) < 0.05


# --------------------------------------------------------------------------- fitting


@pytest.mark.parametrize(
    ("offset", "heading_deg", "curvature", "lines"),
    [
        (0.0, 0.0, 0.0, 2),
        (0.45, 1.5, 0.0, 2),
        (-0.6, -2.0, 1 / 150, 2),
        # On an 80 m radius with speckle, the 3 m dashes 6 m apart are not one line in a single
        # frame: the solid line and the lane-width prior give the lane alone, as exactly.
        (0.2, 0.5, -1 / 80, 1),
    ],
)
def test_lane_estimate_on_noisy_synthetic_masks(offset, heading_deg, curvature, lines):
    mask = synthetic_mask(
        CAM, offset, math.radians(heading_deg), curvature, dashed=("left",), noise=0.004
    )
    est = track(LaneTracker(), mask)
    assert est is not None and est.lines_found == lines
    assert est.lateral_offset_m == pytest.approx(-offset, abs=0.08)
    assert est.heading_error_rad == pytest.approx(-math.radians(heading_deg), abs=math.radians(0.6))
    assert est.curvature == pytest.approx(curvature, abs=0.003)
    assert est.width_m == pytest.approx(3.5, abs=0.3)
    assert est.confidence > 0.5


def test_one_line_missing_uses_the_lane_width_prior():
    cfg = TrackerConfig(lane_width_m=3.5)
    for side in ("left", "right"):
        mask = synthetic_mask(CAM, offset=0.3, lines=(side,), noise=0.002)
        est = track(LaneTracker(cfg), mask)
        assert est is not None and est.lines_found == 1
        assert est.lateral_offset_m == pytest.approx(-0.3, abs=0.1)
        assert (est.left is None) == (side == "right")


def test_lane_width_learned_then_used_when_a_line_disappears():
    tracker = LaneTracker(TrackerConfig(lane_width_m=3.5))
    for _ in range(15):
        track(tracker, synthetic_mask(CAM, offset=0.0, width=3.0))
    assert tracker.width == pytest.approx(3.0, abs=0.1)
    est = track(tracker, synthetic_mask(CAM, offset=0.0, width=3.0, lines=("left",)))
    assert est.lines_found == 1
    assert est.lateral_offset_m == pytest.approx(0.0, abs=0.08)


def test_both_lines_missing_holds_with_decaying_confidence_then_lost():
    tracker = LaneTracker()
    first = track(tracker, synthetic_mask(CAM, offset=0.4))
    empty = np.zeros((CAM.height, CAM.width), np.uint8)
    confs = []
    for _ in range(6):
        est = track(tracker, empty)
        assert est.held and est.lines_found == 0
        assert est.lateral_offset_m == pytest.approx(first.lateral_offset_m, abs=1e-9)
        confs.append(est.confidence)
    assert all(b < a for a, b in zip(confs, confs[1:], strict=False))
    for _ in range(40):
        track(tracker, empty)
    assert tracker([]) is None  # the node publishes nothing while the lane is lost
    assert track(LaneTracker(), empty) is None  # nothing ever seen: no estimate


def test_a_single_jumping_frame_is_refused():
    tracker = LaneTracker()
    for _ in range(5):
        track(tracker, synthetic_mask(CAM, offset=0.0, width=3.5))
    # the ego lane's left line only, 1.75 m further left: looks like a 1.5+ m jump
    est = track(tracker, synthetic_mask(CAM, offset=1.6, width=3.5, lines=("left",)))
    assert abs(est.lateral_offset_m) < 0.3


def test_ego_motion_moves_the_prediction():
    c = np.array([0.5, 0.02, 0.001])
    moved = move_coeffs(c, 2.0, 0.1, 0.01)
    for x in (0.0, 10.0, 20.0):  # a point on the old line, seen from the new frame
        px, py = x + 2.0, float(poly(c, x + 2.0))
        qx, qy = px - 2.0, py - 0.1
        nx = math.cos(0.01) * qx + math.sin(0.01) * qy
        ny = -math.sin(0.01) * qx + math.cos(0.01) * qy
        assert float(poly(moved, nx)) == pytest.approx(ny, abs=1e-3)


def test_center_points_for_a_path():
    pts = center_points(np.array([0.2, 0.0, 0.01]), length_m=10, step_m=2.0)
    assert pts[0] == (0.0, pytest.approx(0.2)) and len(pts) == 6
    assert pts[-1][1] == pytest.approx(0.2 + 0.01 * 100)
    tracker = LaneTracker()
    path = tracker(extract_lanes(synthetic_mask(CAM, offset=-0.3), camera=CAM))
    assert path is not None and path[0][1] == pytest.approx(-0.3, abs=0.08)


def test_lines_without_a_camera_are_not_tracked():
    """Lines found with the nominal camera (no camera given) are not metric: no lane centre."""
    lanes = extract_lanes(synthetic_mask(CAM, offset=0.2))
    assert len(lanes) == 2 and LaneTracker().update(lanes) is None


def test_bad_mask_shape():
    with pytest.raises(ValueError, match="HxW"):
        extract_lanes(np.zeros((4, 4, 3), np.uint8), camera=CAM)
