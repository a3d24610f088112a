"""The renderer's masks agree with the camera model and the road geometry."""

import math

import cv2
import numpy as np
import pytest

from lane_seg.camera import Camera
from lane_seg.sim.world.render import render
from lane_seg.sim.world.road import Road
from lane_seg.sim.world.scene import WHITE, SimConfig, Stripe, sample_scene
from lane_seg.sim.world.view import ego_pose

CLEAR = dict(
    night_probability=0,
    dusk_probability=0,
    rain_probability=0,
    fog_probability=0,
    glare_probability=0,
    shadow_probability=0,
    hood_probability=0,
    vehicles=(0, 0),
    barrier_probability=0,
    pole_probability=0,
)


def _straight_scene(seed=0):
    cfg = SimConfig(**CLEAR, wear=(0.0, 0.0), lanes=(2, 2))
    rng = np.random.default_rng(seed)
    road = Road.from_curvature(np.zeros(2001), 0.5)
    scene = sample_scene(rng, cfg, road)
    scene.boundaries = [
        [Stripe(o, 0.15, WHITE)] for o in (-scene.lane_width, 0.0, scene.lane_width)
    ]
    return scene, rng


def _line_through(points_uv):
    """Total-least-squares line (point, unit direction) through pixel coordinates."""
    c = points_uv.mean(axis=0)
    _, _, vt = np.linalg.svd(points_uv - c)
    return c, vt[0]


def test_straight_road_markings_meet_at_predicted_vanishing_point():
    scene, rng = _straight_scene()
    cam = Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=3.0)
    _, mask = render(
        scene,
        cam,
        ego_pose(scene, 50.0, scene.lane_center(0)),
        rng,
        motion_blur_probability=0,
        jpeg_probability=0,
        hood=False,
    )
    n, labels = cv2.connectedComponents((mask > 0).astype(np.uint8))
    lines = []
    for k in range(1, n):
        v, u = np.nonzero((labels == k) & (np.arange(256)[:, None] > cam.horizon_v() + 15))
        if len(u) > 200:
            lines.append(_line_through(np.column_stack([u, v]).astype(float)))
    assert len(lines) == 3  # three solid lines, each one connected component
    (p1, d1), (p2, d2) = lines[0], lines[-1]
    t = np.linalg.solve(np.column_stack([d1, -d2]), p2 - p1)
    vp = p1 + t[0] * d1
    expected = (cam.cx, cam.cy - cam.fy * math.tan(math.radians(3.0)))
    assert vp == pytest.approx(expected, abs=1.5)


def test_every_mask_pixel_projects_back_onto_a_marking():
    scene, rng = _straight_scene(1)
    cam = Camera.from_fov(512, 256, 55, height_m=1.4, pitch_deg=2.0, roll_deg=1.0, yaw_deg=-1.5)
    s_ego, d_ego = 80.0, scene.lane_center(1) + 0.3
    pose = ego_pose(scene, s_ego, d_ego, heading_offset=0.02)
    _, mask = render(
        scene, cam, pose, rng, motion_blur_probability=0, jpeg_probability=0, hood=False
    )
    v, u = np.nonzero(mask)
    ground, valid = cam.pixel_to_ground(np.column_stack([u, v]).astype(float))
    assert valid.all()
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    wx = pose.x + c * ground[:, 0] - s * ground[:, 1]
    wy = pose.y + s * ground[:, 0] + c * ground[:, 1]
    _, d, ok = scene.road.frenet(wx, wy, np.full(len(wx), s_ego))
    assert ok.all()
    offsets = np.array([st.offset for b in scene.boundaries for st in b])
    gap = np.abs(d[:, None] - offsets[None]).min(axis=1)
    # Within half the paint width plus the pixel's ground footprint (far pixels are metres long
    # along the road, but only centimetres across it).
    dist = np.hypot(ground[:, 0], ground[:, 1])
    footprint = dist**2 / (cam.fy * cam.height_m) * 0.15 + dist / cam.fx
    assert (gap <= 0.075 + footprint).all()
    # And the near lines are really there: thousands of labelled pixels.
    assert len(u) > 1500


def test_occluding_vehicle_clears_mask():
    from lane_seg.sim.world.scene import Box

    scene, rng = _straight_scene(2)
    cam = Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=3.0)
    pose = ego_pose(scene, 50.0, scene.lane_center(0))
    kw = dict(motion_blur_probability=0, jpeg_probability=0, hood=False)
    _, free = render(scene, cam, pose, np.random.default_rng(0), **kw)
    # A wide truck straddling the centre line 12 m ahead.
    scene.vehicles = [Box(62.0, 0.0, 8.0, 2.5, 3.5, (0.9, 0.9, 0.9))]
    image, blocked = render(scene, cam, pose, np.random.default_rng(0), **kw)
    hidden = (free > 0) & (blocked == 0)
    assert hidden.sum() > 100
    assert not ((blocked > 0) & (free == 0)).any()  # occlusion never adds paint
