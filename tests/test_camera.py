import math

import numpy as np
import pytest

from lane_seg.camera import Camera


@pytest.fixture
def cam():
    return Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=3.0, yaw_deg=1.0, roll_deg=0.5)


def test_ground_round_trip(cam):
    pts = np.array([[5.0, 1.0, 0.0], [20.0, -3.5, 0.0], [60.0, 7.0, 0.0]])
    uv, depth = cam.project(pts)
    assert (depth > 0).all()
    back, valid = cam.pixel_to_ground(uv)
    assert valid.all()
    np.testing.assert_allclose(back, pts[:, :2], atol=1e-9)


def test_homography_matches_projection(cam):
    pts = np.array([[8.0, 2.0], [30.0, -1.0]])
    uv, _ = cam.project(np.column_stack([pts, np.zeros(2)]))
    h = cam.ground_homography() @ np.column_stack([pts, np.ones(2)]).T
    np.testing.assert_allclose((h[:2] / h[2]).T, uv, atol=1e-9)


def test_horizon_of_level_camera_is_pitch_above_centre():
    cam = Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=4.0)
    assert cam.horizon_v() == pytest.approx(cam.cy - cam.fy * math.tan(math.radians(4.0)))
    _, valid = cam.pixel_to_ground(np.array([[cam.cx, cam.horizon_v() - 1.0]]))
    assert not valid[0]  # above the horizon: no ground
