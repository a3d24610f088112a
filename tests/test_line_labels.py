"""Lane-line labels (CULane/TuSimple convention) drawn from the simulator's own geometry."""

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world import line_labels
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
CAM = Camera.from_fov(512, 256, 60, height_m=1.5, pitch_deg=3.0)


def _scene(lanes: int, dashed: bool = True, seed: int = 0):
    cfg = SimConfig(**CLEAR, wear=(0.0, 0.0), lanes=(lanes, lanes))
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, cfg, Road.from_curvature(np.zeros(2001), 0.5))
    half = scene.half_width
    scene.boundaries = [
        [Stripe(-half + i * scene.lane_width, 0.15, WHITE, *((3.0, 12.0) if dashed else ()))]
        for i in range(lanes + 1)
    ]
    return scene, rng


def _render(scene, rng, label, lane=0, **kw):
    pose = ego_pose(scene, 50.0, scene.lane_center(lane))
    kw = {"motion_blur_probability": 0, "jpeg_probability": 0, "hood": False, **kw}
    return render(scene, CAM, pose, rng, label=label, **kw)[1]


def test_lines_run_through_the_gaps_of_dashed_paint():
    scene, rng = _scene(2)
    paint = _render(scene, rng, "paint") > 0
    lines = _render(scene, np.random.default_rng(0), "lines", line_width_px=5) > 0
    rows_paint = np.flatnonzero(paint.any(axis=1))
    rows_lines = np.flatnonzero(lines.any(axis=1))
    # Dashes leave rows without paint between them; the line label has no such gap.
    bottom, top = rows_lines.max(), rows_lines.min()
    assert len(rows_lines) == bottom - top + 1
    assert len(rows_paint) < len(rows_lines)
    # Every painted pixel lies on (or within a pixel or two of) a labelled line.
    near = np.zeros_like(lines)
    near[:, 2:] |= lines[:, :-2]
    near[:, :-2] |= lines[:, 2:]
    assert (paint & ~(near | lines)).sum() < 0.02 * paint.sum()


def test_lines_have_the_label_width_and_stay_below_the_horizon():
    scene, rng = _scene(2, dashed=False)
    lines = _render(scene, rng, "lines", line_width_px=5) > 0
    horizon = CAM.horizon_v()
    assert not lines[: int(horizon)].any()
    # Half the width is the largest distance from a label pixel to the background.
    inside = cv2.distanceTransform(lines.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    near = slice(int(horizon) + 60, None)  # where the lines are apart
    assert 2.0 <= inside[near].max() <= 3.5
    n, _ = cv2.connectedComponents(lines[near].astype(np.uint8))
    assert n - 1 == 3  # the ego lane's two lines and the road edge beyond the centre line


def test_ego_lane_and_its_neighbours_only():
    scene, _ = _scene(5)
    # Ego in the middle lane of five: two boundaries each side of it, not the road's edges.
    offsets = line_labels.labelled_boundaries(scene, 2)
    edges = {-scene.half_width, scene.half_width}
    assert len(offsets) == 4 and not edges & {round(o, 6) for o in offsets}
    scene.boundaries[3] = []  # an unmarked boundary gets no line
    assert len(line_labels.labelled_boundaries(scene, 2)) == 3


def test_lane_of_lateral_offset():
    scene, _ = _scene(3)
    for lane in range(3):
        assert line_labels.ego_lane_at(scene, scene.lane_center(lane)) == lane
    assert line_labels.ego_lane_at(scene, 100.0) == 2  # beyond the road: the nearest lane


def test_lines_run_on_over_the_hood_paint_does_not():
    scene, _ = _scene(2, dashed=False)
    lines = _render(scene, np.random.default_rng(0), "lines", hood=True) > 0
    paint = _render(scene, np.random.default_rng(0), "paint", hood=True) > 0
    assert lines[-3:].any() and not paint[-3:].any()
    stopped = _render(scene, np.random.default_rng(0), "lines", hood=True, lines_over_hood=False)
    assert not stopped[-3:].any() and stopped.any()
