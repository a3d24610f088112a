"""Lane instances from masks with known lines: straight, curved, dashed, lines converging toward
the vanishing point, a blob, a stop line, noise, an empty mask; with the exact camera and with
the nominal camera at the mask's own vanishing point; masks at other resolutions."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from lane_seg.camera import Camera
from lane_seg.lanes.extract import (
    EGO_LEFT,
    EGO_RIGHT,
    LaneConfig,
    LaneInstance,
    ego_lines,
    extract_lanes,
    nearest_lines,
)
from lane_seg.lanes.mask import band_pieces, row_runs

CAM = Camera.from_fov(512, 256, 60.0, height_m=1.5, pitch_deg=3.0)
Line = Callable[[np.ndarray], np.ndarray]  # lateral offset y(x) on the ground, metres


def straight(offset: float) -> Line:
    return lambda x: np.full_like(x, offset)


def curved(offset: float, curvature: float) -> Line:
    return lambda x: offset + 0.5 * curvature * x * x


@functools.lru_cache(maxsize=4)
def _pixel_ground(cam: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v, u = np.mgrid[0 : cam.height, 0 : cam.width]
    g, ok = cam.pixel_to_ground(np.stack([u.ravel(), v.ravel()], 1).astype(float))
    return g[:, 0], g[:, 1], ok


def exact_mask(cam: Camera, lines: list[Line], width_m: float = 0.15) -> np.ndarray:
    """Every pixel whose centre lies on the paint on the ground, as the simulator labels."""
    x, y, ok = _pixel_ground(cam)
    mask = np.zeros(len(x), bool)
    with np.errstate(invalid="ignore"):
        for line in lines:
            mask |= ok & (x > 0.5) & (np.abs(y - line(x)) < width_m / 2)
    return mask.reshape(cam.height, cam.width).astype(np.uint8) * 255


def ground_mask(
    cam: Camera,
    lines: list[Line],
    width_m: float = 0.15,
    dashed: tuple[int, ...] = (),
    x_max: float = 100.0,
) -> np.ndarray:
    """Painted lines drawn into the image as a model or a label tool draws them: as wide as
    the paint, but never thinner than 2 px; `dashed` lines have 3 m dashes and 9 m gaps."""
    mask = np.zeros((cam.height, cam.width), np.uint8)
    xs = np.geomspace(0.5, x_max, 600)
    for i, line in enumerate(lines):
        uv, depth = cam.project(np.column_stack([xs, line(xs), np.zeros_like(xs)]))
        on = depth > 0
        if i in dashed:
            on &= np.mod(xs, 12.0) < 3.0
        for k in np.flatnonzero(on[:-1] & on[1:]):
            thick = max(2, round(width_m * cam.fx / xs[k]))
            a, b = (tuple(int(v) for v in np.rint(p * 16)) for p in (uv[k], uv[k + 1]))
            cv2.line(mask, a, b, 255, thick, cv2.LINE_8, 4)
    return mask


def true_x(cam: Camera, line: Line, rows: np.ndarray) -> np.ndarray:
    """Image x of a ground line at image rows (dense sampling, interpolated)."""
    xs = np.geomspace(0.5, 300.0, 4000)
    uv, depth = cam.project(np.column_stack([xs, line(xs), np.zeros_like(xs)]))
    keep = depth > 0
    uv = uv[keep][np.argsort(uv[keep][:, 1])]
    return np.interp(rows, uv[:, 1], uv[:, 0], left=np.nan, right=np.nan)


def assert_follows(lane: LaneInstance, cam: Camera, line: Line, tol_px: float, top: float):
    """On every row from `top` down where the true line is in the image, the polyline is there
    and within tol_px of it."""
    rows = np.arange(np.ceil(top), cam.height - 1, 2.0)
    want = true_x(cam, line, rows)
    rows, want = (
        rows[(want >= 0) & (want <= cam.width - 1)],
        want[(want >= 0) & (want <= cam.width - 1)],
    )
    got = lane.x_at(rows)
    assert np.isfinite(got).all(), (
        f"polyline covers rows {lane.points[0, 1]:.0f}..{lane.points[-1, 1]:.0f}"
    )
    err = np.abs(got - want)
    assert err.max() < tol_px, f"max error {err.max():.2f} px"


def horizon(cam: Camera) -> float:
    return cam.horizon_v()


# --------------------------------------------------------------------------- exact camera


def test_two_straight_lines_ordered_with_ego_flags():
    lines = [straight(1.75), straight(-1.75)]
    lanes = extract_lanes(ground_mask(CAM, lines), camera=CAM)
    assert len(lanes) == 2
    left, right = lanes
    assert (left.ego, right.ego) == (EGO_LEFT, EGO_RIGHT)
    assert ego_lines(lanes) == (left, right)
    top = horizon(CAM) + 15
    assert_follows(left, CAM, lines[0], 1.5, top)
    assert_follows(right, CAM, lines[1], 1.5, top)
    for lane in lanes:
        assert np.all(np.diff(lane.points[:, 1]) >= 0)  # ordered by y
        assert lane.points[-1, 1] > CAM.height - 2  # down to the bottom row
        assert 0.5 < lane.confidence <= 1.0
        # Ground points in metres, on the painted line.
        g = lane.ground[np.isfinite(lane.ground[:, 0])]
        assert np.abs(np.abs(g[:, 1]) - 1.75).max() < 0.15


def test_simulator_style_exact_mask():
    """Pixel-exact labels thin out to dotted specks far away; the near lines still come out."""
    lines = [straight(1.75), straight(-1.75)]
    lanes = extract_lanes(exact_mask(CAM, lines), camera=CAM)
    assert [lane.ego for lane in lanes] == [EGO_LEFT, EGO_RIGHT]
    for lane, line in zip(lanes, lines, strict=True):
        assert_follows(lane, CAM, line, 1.5, horizon(CAM) + 25)


def test_curved_lines():
    lines = [curved(1.75, 1 / 250), curved(-1.75, 1 / 250)]
    lanes = extract_lanes(ground_mask(CAM, lines, x_max=60), camera=CAM)
    assert len(lanes) == 2
    for lane, line in zip(lanes, lines, strict=True):
        assert_follows(lane, CAM, line, 2.5, lane.points[0, 1])
        assert lane.points[0, 1] < horizon(CAM) + 20  # it follows the bend far out


def test_dashed_line_is_one_instance_through_its_gaps():
    lines = [straight(1.75), straight(-1.75)]
    mask = ground_mask(CAM, lines, dashed=(0,))
    lanes = extract_lanes(mask, camera=CAM)
    assert len(lanes) == 2
    dashed = lanes[0]
    assert dashed.ego == EGO_LEFT
    # Rows where the dashed line has no paint are covered by the polyline all the same.
    rows = np.arange(int(horizon(CAM)) + 15, CAM.height - 1)
    col = np.rint(true_x(CAM, lines[0], rows)).astype(int)
    inside = (col >= 0) & (col < CAM.width)
    gaps = rows[inside][mask[rows[inside], col[inside]] == 0]
    assert len(gaps) > 20
    assert_follows(dashed, CAM, lines[0], 2.0, horizon(CAM) + 15)


def test_lines_converging_toward_the_vanishing_point_stay_apart():
    offsets = [5.25, 1.75, -1.75, -5.25]
    lines = [straight(o) for o in offsets]
    mask = ground_mask(CAM, lines, width_m=0.2, x_max=250)
    # As in a model's mask, the lines run into one blob near the horizon.
    v = int(horizon(CAM))
    cv2.fillConvexPoly(
        mask, np.array([[236, v + 1], [276, v + 1], [300, v + 9], [212, v + 9]]), 255
    )
    n, _ = cv2.connectedComponents(mask)
    assert n - 1 == 1
    lanes = extract_lanes(mask, camera=CAM)
    assert len(lanes) == 4
    assert [lane.ego for lane in lanes] == [None, EGO_LEFT, EGO_RIGHT, None]
    for lane, line in zip(lanes, lines, strict=True):
        assert_follows(lane, CAM, line, 2.0, horizon(CAM) + 12)


def test_blob_and_stop_line_are_not_lanes():
    lines = [straight(1.75), straight(-1.75)]
    clean = extract_lanes(ground_mask(CAM, lines), camera=CAM)
    mask = ground_mask(CAM, lines)
    cv2.circle(mask, (400, 190), 14, 255, -1)  # a round blob (a light, a sign)
    cv2.circle(mask, (120, 150), 5, 255, -1)
    x, y, ok = _pixel_ground(CAM)
    with np.errstate(invalid="ignore"):
        stop = ok & (x > 12.0) & (x < 12.5) & (np.abs(y) < 6.0)  # a stop line across the road
    mask[stop.reshape(mask.shape)] = 255
    lanes = extract_lanes(mask, camera=CAM)
    assert len(lanes) == 2
    for a, b in zip(lanes, clean, strict=True):
        rows = np.arange(int(horizon(CAM)) + 15, CAM.height - 1)
        assert np.nanmax(np.abs(a.x_at(rows) - b.x_at(rows))) < 1.5


def test_empty_and_noise_only_masks_have_no_lanes():
    assert extract_lanes(np.zeros((256, 512), np.uint8), camera=CAM) == []
    assert extract_lanes(np.zeros((256, 512), np.uint8)) == []
    rng = np.random.default_rng(0)
    speckle = (rng.random((256, 512)) < 0.002).astype(np.uint8) * 255
    assert extract_lanes(speckle) == []


def test_model_like_mask_thick_broken_and_noisy():
    lines = [straight(1.9), straight(-1.6)]
    mask = ground_mask(CAM, lines, width_m=0.35)
    rng = np.random.default_rng(1)
    mask[rng.random(mask.shape) < 0.003] = 255  # false-positive speckle
    mask[:, 200:215] = 0  # a vertical stripe missing (a car's shadow)
    mask[200:206] = 0  # a band of rows missing
    lanes = extract_lanes(mask, camera=CAM)
    assert len(lanes) == 2
    for lane, line in zip(lanes, lines, strict=True):
        assert_follows(lane, CAM, line, 3.5, horizon(CAM) + 20)  # lines 30 px wide here


# --------------------------------------------------------------------------- nominal camera


@pytest.mark.parametrize(
    "lines",
    [
        [straight(5.25), straight(1.75), straight(-1.75)],
        [curved(1.75, -1 / 200), curved(-1.75, -1 / 200)],
    ],
)
def test_without_a_camera_the_nominal_one_finds_the_same_lines(lines):
    cam = dataclasses.replace(CAM, yaw_deg=1.0)  # the vanishing point off the image centre
    mask = ground_mask(cam, lines, x_max=70)
    lanes = extract_lanes(mask)
    assert len(lanes) == len(lines)
    assert sum(lane.ego is not None for lane in lanes) == 2
    for lane, line in zip(lanes, lines, strict=True):
        assert lane.ground is None  # a nominal camera's ground is not metric
        assert_follows(lane, cam, line, 3.0, horizon(cam) + 20)


def test_label_masks_at_their_own_resolution():
    """CULane-style label: polylines drawn 16 px wide at 1640x590, lane ids as pixel values."""
    vp = np.array([830.0, 260.0])
    bottoms = [-300.0, 420.0, 1300.0, 2000.0]
    mask = np.zeros((590, 1640), np.uint8)
    truth = []
    for k, bx in enumerate(bottoms):
        t = np.linspace(0.1, 1.0, 30)[:, None]
        pts = vp + t * (np.array([bx, 589.0]) - vp)
        truth.append(pts)
        cv2.polylines(mask, [np.rint(pts).astype(np.int32)], False, 5 * (k + 1), 16)
    lanes = extract_lanes(mask)
    assert len(lanes) == 4
    assert [lane.ego for lane in lanes] == [None, EGO_LEFT, EGO_RIGHT, None]
    for lane, pts in zip(lanes, truth, strict=True):
        rows = np.arange(300.0, 580.0, 10.0)
        want = np.interp(rows, pts[:, 1], pts[:, 0])
        got = lane.x_at(rows)
        inside = np.isfinite(got) & (want > 0) & (want < 1639)
        assert inside.sum() >= 5
        assert np.abs(got[inside] - want[inside]).max() < 12  # under 1% of the width


# --------------------------------------------------------------------------- details


def test_probability_map_scales_the_confidence():
    mask = ground_mask(CAM, [straight(1.75), straight(-1.75)])
    sure = extract_lanes(mask, prob=np.where(mask > 0, 1.0, 0.0), camera=CAM)
    unsure = extract_lanes(mask, prob=np.where(mask > 0, 0.6, 0.0), camera=CAM)
    for a, b in zip(sure, unsure, strict=True):
        assert b.confidence == pytest.approx(0.6 * a.confidence, rel=1e-6)
        np.testing.assert_allclose(a.points, b.points)


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="HxW"):
        extract_lanes(np.zeros((256, 512, 3), np.uint8))
    with pytest.raises(ValueError, match="prob"):
        extract_lanes(np.zeros((256, 512), np.uint8), prob=np.zeros((128, 256)))


def test_a_finer_working_size_gives_the_same_lines():
    lines = [straight(1.75), straight(-1.75)]
    mask = ground_mask(CAM, lines)
    fine = extract_lanes(mask, camera=CAM, cfg=LaneConfig(work_size=(1024, 512)))
    assert len(fine) == 2
    for lane, line in zip(fine, lines, strict=True):
        assert_follows(lane, CAM, line, 1.5, horizon(CAM) + 15)


def test_instance_helpers():
    lane = LaneInstance(np.array([[10.0, 0.0], [20.0, 10.0], [40.0, 20.0]]), 0.9)
    np.testing.assert_allclose(lane.x_at([0.0, 5.0, 15.0, 20.0]), [10.0, 15.0, 30.0, 40.0])
    assert np.isnan(lane.x_at(25.0))
    big = lane.scaled((512, 256), (1024, 512))
    np.testing.assert_allclose(big.points[0], [20.5, 0.5])
    np.testing.assert_allclose(big.scaled((1024, 512), (512, 256)).points, lane.points)


def test_bands_keep_merging_arms_apart():
    mask = np.zeros((32, 64), np.uint8)
    cv2.line(mask, (10, 31), (32, 2), 1, 1)
    cv2.line(mask, (54, 31), (32, 2), 1, 1)  # one V-shaped component, apex at the top
    runs = row_runs(mask)
    labels, n = band_pieces(mask, runs, 16)
    assert len(np.unique(labels[runs.row >= 16])) == 2  # two pieces in the lower band
    assert len(np.unique(labels[runs.row < 16])) == 1 and n == 4  # one above (and background)


def test_nearest_lines_keeps_the_ego_lane_and_its_neighbours():
    lines = [straight(o) for o in (8.75, 5.25, 1.75, -1.75, -5.25, -8.75)]
    lanes = extract_lanes(ground_mask(CAM, lines, width_m=0.2), camera=CAM)
    assert len(lanes) == 6
    picked = nearest_lines(lanes, 2)
    assert picked == lanes[1:5]
    assert [lane.ego for lane in nearest_lines(lanes, 1)] == [EGO_LEFT, EGO_RIGHT]
    assert nearest_lines([], 2) == []


@pytest.mark.parametrize("curvature", [1 / 80, -1 / 80, 1 / 70, -1 / 70])
def test_a_tight_bend_gives_two_whole_lines(curvature):
    """On a 70-80 m radius the far stretch of each line seeds a line of its own in the band
    beyond; it is joined to its near stretch, so each line is one fit along its whole curve
    (what the tracker's lane centre needs on tight_curves)."""
    lines = [curved(1.75, curvature), curved(-1.75, curvature)]
    lanes = extract_lanes(ground_mask(CAM, lines), camera=CAM)
    assert len(lanes) == 2
    xs = np.linspace(6.0, 25.0, 8)
    for lane, line in zip(lanes, lines, strict=True):
        assert lane.fit.pts[:, 0].max() > 35.0
        np.testing.assert_allclose(lane.fit.y(xs), line(xs), atol=0.05)


def test_instances_carry_their_ground_fit_with_a_known_camera():
    """The tracker reads each instance's fit (vehicle frame, metres): the same line as the
    polyline, one extraction for both; without a camera there is none (nothing metric)."""
    lines = [straight(1.75), curved(-1.75, 1 / 200)]
    mask = ground_mask(CAM, lines)
    lanes = extract_lanes(mask, camera=CAM)
    assert [lane.ego for lane in lanes] == [EGO_LEFT, EGO_RIGHT]
    for lane, line in zip(lanes, lines, strict=True):
        xs = np.linspace(8.0, 30.0, 12)
        np.testing.assert_allclose(lane.fit.y(xs), line(xs), atol=0.08)
    assert all(lane.fit is None for lane in extract_lanes(mask))


def test_extension_to_the_bottom_of_the_view_is_a_setting():
    """A dashed line whose first dash is well up the image is drawn down to the bottom row by
    default (as the benchmarks label lines), and not with extend_gap_m=0."""
    lines = [straight(1.75), straight(-1.75)]
    mask = ground_mask(CAM, lines, dashed=(0,))
    default = extract_lanes(mask, camera=CAM)[0]
    visible = extract_lanes(mask, camera=CAM, cfg=LaneConfig(extend_gap_m=0.0))[0]
    assert default.points[-1, 1] > CAM.height - 2
    first_dash_row = np.flatnonzero(mask[:, : CAM.width // 2].any(axis=1))[-1]
    assert visible.points[-1, 1] < first_dash_row + 3


def test_a_line_seen_only_far_away_follows_the_road_down_on_a_bend():
    """Only far dashes of the left line are in view (a hood, a worn stretch): it is drawn down
    to the bottom parallel to the right line, which the camera sees from near to far, not along
    the extrapolation of a fit to those few dashes."""
    left, right = curved(1.75, 1 / 150), curved(-1.75, 1 / 150)
    far = ground_mask(CAM, [left], dashed=(0,))
    cut = int(CAM.project(np.array([[12.0, 1.75, 0.0]]))[0][0, 1])  # the row 12 m ahead
    far[cut:] = 0
    mask = far | ground_mask(CAM, [right])
    lanes = extract_lanes(mask, camera=CAM)
    assert [lane.ego for lane in lanes] == [EGO_LEFT, EGO_RIGHT]
    assert_follows(lanes[0], CAM, left, 4.0, horizon(CAM) + 15)  # 20 px off along its own fit


def test_points_at_one_distance_keep_their_line_instead_of_a_singular_fit():
    """Points stacked at one or two distances ahead (a random model's mask can give them) fix
    no quadratic: the fit keeps the line it had instead of raising LinAlgError."""
    from lane_seg.lanes.grouping import _design, _fit_all

    x = np.array([10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 5.0, 10.0, 15.0, 20.0])
    y = np.array([1.0, 1.1, 0.9, 1.2, 1.3, 1.1, -2.0, -2.1, -2.2, -2.3])
    owner = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    before = np.array([[1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    after = _fit_all(_design(x, y), owner, before, prior=0.0)
    assert np.array_equal(after[0], before[0])  # two distances: kept
    assert np.isfinite(after[1]).all() and not np.array_equal(after[1], before[1])  # fitted


@pytest.mark.parametrize("seed", range(6))
def test_random_model_like_masks_never_raise(seed):
    """A random-weight model's blotchy mask: lanes or none, never an exception."""
    rng = np.random.default_rng(seed)
    blobs = cv2.GaussianBlur(rng.random((256, 512)).astype(np.float32), (0, 0), 3 + seed)
    mask = (blobs > np.quantile(blobs, 0.9)).astype(np.uint8) * 255
    for camera in (None, CAM):
        for lane in extract_lanes(mask, camera=camera):
            assert np.isfinite(lane.points).all()
