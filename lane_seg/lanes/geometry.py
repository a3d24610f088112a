"""Lane geometry from a lane-marking mask: the ego lane's centre line in the vehicle frame.

Pipeline, per frame:

1. Inverse perspective mapping: every mask pixel is cast onto the ground plane with the camera
   model (`Camera.pixel_to_ground`; the per-pixel table is cached per camera), keeping points in a
   band ahead of the vehicle.
2. Grouping: a histogram of lateral offsets seeds one group per marking. When an estimate from
   earlier frames exists, its shape (heading and curvature) is subtracted first, which straightens
   the lines on curves so that a near-to-far band of points collapses into sharp peaks.
3. Robust fit: RANSAC on y(x) = c0 + c1 x + c2 x^2, refined by least squares on the inliers with
   a mild pull of c2 towards the prior (short dashes alone cannot pin a curvature down), then
   grown: every point near the fit joins, and the line is fitted again.
4. Ego lane: the nearest line on each side (gated around the previous estimate), checked for a
   plausible, parallel lane width. With one line the other comes from the lane-width prior; with
   none the last estimate is held, its confidence decaying each frame.
5. Temporal smoothing: the previous centre line is moved by the ego motion (when known) and
   blended with the new measurement, weighted by the measurement's confidence; a measurement
   that jumps far from the prediction is refused a few times before it is believed.

Vehicle frame (REP-103): x forward, y left, origin where `Camera` puts it (the vehicle reference
point; `Camera.x_m` is the camera's mounting ahead of it). No ROS import here: the node, the
closed loop and the tests all call the same functions.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lane_seg.camera import Camera

Coeffs = np.ndarray  # (c0, c1, c2) of y(x) = c0 + c1 x + c2 x^2, metres


@dataclass(frozen=True)
class GeometryConfig:
    """Tuning of the lane-geometry pipeline (metres unless stated)."""

    x_range_m: tuple[float, float] = (4.0, 38.0)  # ground band used, ahead of the origin
    y_max_m: float = 8.0  # |lateral| beyond this is ignored
    max_points: int = 4000  # ground points kept per frame (evenly subsampled)
    seed_band_m: float = 16.0  # length of the near band the histogram looks at
    seed_band_prior_m: float = 28.0  # ... when a prior straightens the lines
    bin_m: float = 0.15  # histogram bin
    min_peak_points: int = 12
    peak_separation_m: float = 1.2  # peaks closer than this are one marking (double lines)
    slice_m: float = 2.0  # sliding-window step along x
    window_m: float = 0.4  # half width of a sliding window
    max_gap_m: float = 16.0  # windows carry on over gaps up to this long (dashes, occluders)
    grow_m: float = 0.25  # points this close to a fit join the line
    ransac_iterations: int = 48
    inlier_m: float = 0.15
    min_points: int = 20
    curvature_prior_points: float = 1.0  # pull of c2 towards the prior, as this many points
    lane_width_m: float = 3.5  # prior lane width before one is measured
    lane_width_range_m: tuple[float, float] = (2.4, 5.0)
    parallel_tolerance_m: float = 0.8  # width change between x=0 and x=20 still "parallel"
    min_line_quality: float = 0.2  # weaker fits (speckle, stray blobs) are not lane lines
    side_gate_m: float = 1.0  # a line must be this close to where the prior expects it
    smoothing: float = 0.6  # weight of a full-confidence measurement against the prediction
    hold_decay: float = 0.85  # confidence factor per frame while nothing is measured
    jump_gate_m: float = 1.0  # centre moved more than this from the prediction: suspect
    jump_accept_frames: int = 4  # ... believed after this many suspect frames in a row
    min_confidence: float = 0.05  # below this the estimate counts as lost
    path_length_m: float = 30.0
    path_step_m: float = 1.0


@dataclass
class LineFit:
    coeffs: Coeffs
    inliers: int
    span_m: float  # extent along x of the inliers
    rms_m: float
    quality: float  # 0..1
    pts: np.ndarray | None = dataclasses.field(default=None, repr=False)  # its inlier points

    def y(self, x: np.ndarray | float) -> np.ndarray | float:
        return poly(self.coeffs, x)


@dataclass
class LaneEstimate:
    """The ego lane in the vehicle frame. `center` is y(x) of the lane centre line."""

    center: Coeffs
    width_m: float
    confidence: float
    lines_found: int  # markings measured this frame: 0, 1 or 2
    held: bool  # True when nothing usable was measured and the estimate was carried over
    left: LineFit | None = None
    right: LineFit | None = None

    @property
    def lateral_offset_m(self) -> float:
        """Vehicle origin relative to the lane centre, + = left of it."""
        return -float(self.center[0])

    @property
    def heading_error_rad(self) -> float:
        """Vehicle heading minus lane heading at the origin, + = pointing left of the lane."""
        return -math.atan(float(self.center[1]))

    @property
    def curvature(self) -> float:
        """Signed curvature (1/m) of the centre line at the origin, + = bending left."""
        c1, c2 = float(self.center[1]), float(self.center[2])
        return 2.0 * c2 / (1.0 + c1 * c1) ** 1.5

    def center_points(
        self, length_m: float = 30.0, step_m: float = 1.0, start_m: float = 0.0
    ) -> list[tuple[float, float]]:
        return center_points(self.center, length_m, step_m, start_m)

    def summary(self) -> dict[str, float]:
        return {
            "lateral_offset_m": self.lateral_offset_m,
            "heading_error_rad": self.heading_error_rad,
            "curvature": self.curvature,
            "width_m": self.width_m,
            "confidence": self.confidence,
            "lines_found": self.lines_found,
        }


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


@functools.lru_cache(maxsize=8)
def _ground_table(cam: Camera, x_lo: float, x_hi: float, y_max: float):
    """Flat pixel indices inside the ground band, and their ground (x, y): cached per camera."""
    v, u = np.mgrid[0 : cam.height, 0 : cam.width]
    uv = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float64)
    ground, valid = cam.pixel_to_ground(uv)
    with np.errstate(invalid="ignore"):
        keep = valid & (ground[:, 0] >= x_lo) & (ground[:, 0] <= x_hi)
        keep &= np.abs(ground[:, 1]) <= y_max
    idx = np.flatnonzero(keep)
    table = np.full(cam.height * cam.width, -1, np.int64)
    table[idx] = np.arange(len(idx))
    return table, ground[idx].astype(np.float64)


def ground_points(mask: np.ndarray, cam: Camera, cfg: GeometryConfig | None = None) -> np.ndarray:
    """Inverse perspective mapping of the mask's lane pixels: (N, 2) ground points (x, y)."""
    cfg = cfg or GeometryConfig()
    if mask.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {mask.shape}")
    cam = camera_for_shape(cam, mask.shape[0], mask.shape[1])
    table, ground = _ground_table(cam, *cfg.x_range_m, cfg.y_max_m)
    rows = table[np.flatnonzero(mask.ravel() > 127)]
    rows = rows[rows >= 0]
    if len(rows) > cfg.max_points:  # even subsampling keeps the result deterministic
        rows = rows[np.linspace(0, len(rows) - 1, cfg.max_points).astype(np.int64)]
    return ground[rows]


# --------------------------------------------------------------------------- fitting


def _design(x: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, x * x], axis=1)


def _refine(x: np.ndarray, y: np.ndarray, c2_prior: float, points: float) -> Coeffs:
    """Least squares of a quadratic with a soft prior on c2, worth `points` points that sit
    where c2 matters (c2 * 400 = lateral metres at x = 20 m): many points along a long line
    outweigh it, a short dash does not."""
    a = _design(x)
    lam = math.sqrt(points) * 400.0
    a = np.vstack([a, [0.0, 0.0, lam]])
    b = np.concatenate([y, [lam * c2_prior]])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def fit_line(
    pts: np.ndarray,
    rng: np.random.Generator,
    cfg: GeometryConfig,
    c2_prior: float = 0.0,
) -> LineFit | None:
    """RANSAC quadratic y(x) through (N,2) ground points, refined on its inliers."""
    n = len(pts)
    if n < cfg.min_points:
        return None
    order = np.argsort(pts[:, 0], kind="stable")
    x, y = pts[order, 0], pts[order, 1]
    k = cfg.ransac_iterations
    # One sample point from each third of the x extent: near points are far more numerous in
    # the image, and three near points extrapolate badly into the far field.
    cuts = np.searchsorted(x, x[0] + (x[-1] - x[0]) * np.array([1 / 3, 2 / 3]))
    lo = np.array([0, cuts[0], cuts[1]])
    hi = np.array([cuts[0], cuts[1], n])
    if (hi - lo).min() < 2:
        lo, hi = np.zeros(3, np.int64), np.full(3, n)
    picks = np.sort(lo + (rng.random((k, 3)) * (hi - lo)).astype(np.int64), axis=1)
    xs, ys = x[picks], y[picks]
    spread = xs[:, 2] - xs[:, 0]
    ok = (spread > 1.0) & (np.abs(xs[:, 1] - xs[:, 0]) > 0.3) & (np.abs(xs[:, 2] - xs[:, 1]) > 0.3)
    if ok.sum() == 0:  # all points at one distance: a line across the view, not along it
        best = np.zeros(n, bool)
    else:
        a = np.stack([np.ones_like(xs[ok]), xs[ok], xs[ok] ** 2], axis=2)
        coeffs = np.linalg.solve(a, ys[ok][..., None])[..., 0]  # (K, 3)
        resid = np.abs(y[None, :] - (coeffs[:, :1] + coeffs[:, 1:2] * x + coeffs[:, 2:] * x * x))
        counts = (resid < cfg.inlier_m).sum(axis=1)
        best = resid[int(np.argmax(counts))] < cfg.inlier_m
    if best.sum() < cfg.min_points:
        # Short or sparse groups: a straight fit through all points, then its inliers.
        c = _refine(x, y, c2_prior, 1e6)  # effectively c2 = prior
        best = np.abs(y - poly(c, x)) < 2 * cfg.inlier_m
        if best.sum() < cfg.min_points:
            return None
    c = _refine(x[best], y[best], c2_prior, cfg.curvature_prior_points)
    for _ in range(2):
        inl = np.abs(y - poly(c, x)) < cfg.inlier_m * 1.5
        if inl.sum() < cfg.min_points:
            return None
        c = _refine(x[inl], y[inl], c2_prior, cfg.curvature_prior_points)
    r = y[inl] - poly(c, x[inl])
    span = float(x[inl].max() - x[inl].min())
    count = int(inl.sum())
    quality = min(1.0, count / 80.0) * (count / n) * min(1.0, span / 12.0)
    rms = float(np.sqrt(np.mean(r * r)))
    return LineFit(c, count, span, rms, float(quality), np.column_stack([x[inl], y[inl]]))


def histogram_peaks(r: np.ndarray, cfg: GeometryConfig) -> list[float]:
    """Lateral positions of histogram peaks, strongest first, at least `peak_separation` apart."""
    edges = np.arange(-cfg.y_max_m, cfg.y_max_m + cfg.bin_m, cfg.bin_m)
    hist, _ = np.histogram(r, bins=edges)
    hist = np.convolve(hist, [1, 2, 3, 2, 1], mode="same") / 3.0
    centres = (edges[:-1] + edges[1:]) / 2
    order = np.argsort(hist)[::-1]
    peaks: list[float] = []
    for i in order:
        if hist[i] < cfg.min_peak_points:
            break
        if all(abs(centres[i] - p) >= cfg.peak_separation_m for p in peaks):
            peaks.append(float(centres[i]))
        if len(peaks) >= 8:
            break
    return peaks


def track_line(x: np.ndarray, r: np.ndarray, peak: float, cfg: GeometryConfig) -> np.ndarray:
    """Sliding windows from near to far: the points of one marking, as a boolean mask.

    Each slice along x keeps the points within `window_m` of where the line is predicted (the
    last window centre plus the local slope), so the windows follow a bend; over a gap (a dash
    gap, an occluder) the prediction carries on for up to `max_gap_m`.
    """
    sel = np.zeros(len(x), bool)
    centres: list[tuple[float, float]] = []
    slope = 0.0
    for lo in np.arange(cfg.x_range_m[0], cfg.x_range_m[1], cfg.slice_m):
        xc = lo + cfg.slice_m / 2
        pred = centres[-1][1] + slope * (xc - centres[-1][0]) if centres else peak
        if centres and xc - centres[-1][0] > cfg.max_gap_m:
            break
        m = (x >= lo) & (x < lo + cfg.slice_m) & (np.abs(r - pred) < cfg.window_m)
        if m.sum() < 3:
            continue
        sel |= m
        centres.append((xc, float(np.median(r[m]))))
        if len(centres) >= 2:
            recent = np.array(centres[-4:])
            slope = float(np.polyfit(recent[:, 0], recent[:, 1], 1)[0])
    return sel


def find_lines(
    pts: np.ndarray,
    cfg: GeometryConfig,
    prior: Coeffs | None = None,
    rng: np.random.Generator | None = None,
) -> list[LineFit]:
    """Group ground points into lane lines and fit each one; lines sorted right to left."""
    rng = rng or np.random.default_rng(0)
    if len(pts) < cfg.min_points:
        return []
    x, y = pts[:, 0], pts[:, 1]
    shape = np.zeros(3) if prior is None else np.array([0.0, prior[1], prior[2]])
    r = y - poly(shape, x)  # straightened by the prior's heading and curvature
    band = cfg.seed_band_prior_m if prior is not None else cfg.seed_band_m
    near = x <= cfg.x_range_m[0] + band
    lines: list[LineFit] = []
    for peak in histogram_peaks(r[near], cfg):
        members = track_line(x, r, peak, cfg)
        fit = fit_line(pts[members], rng, cfg, float(shape[2]))
        if fit is None:
            continue
        grown = np.abs(y - fit.y(x)) < cfg.grow_m  # pick up what the windows missed
        refit = fit_line(pts[grown], rng, cfg, float(shape[2])) if grown.sum() > 0 else None
        if refit is not None and refit.inliers > fit.inliers:
            fit = refit
        if any(abs(fit.y(12.0) - other.y(12.0)) < cfg.peak_separation_m for other in lines):
            continue  # the same marking reached from two seeds
        lines.append(fit)
    return sorted(lines, key=lambda f: float(f.y(0.0)))


def joint_pair(
    left: LineFit, right: LineFit, cfg: GeometryConfig
) -> tuple[LineFit, LineFit] | None:
    """Refit two lines as parallel (own offsets, shared heading and curvature).

    A dashed line seen as two dashes cannot pin down its own curvature, but the solid line
    beside it can; sharing the shape carries it over. None when the two do not fit one shape
    (a lane that merges or splits).
    """
    if left.pts is None or right.pts is None:
        return left, right
    xl, yl = left.pts[:, 0], left.pts[:, 1]
    xr, yr = right.pts[:, 0], right.pts[:, 1]
    x = np.concatenate([xl, xr])
    a = np.column_stack(
        [
            np.r_[np.ones_like(xl), np.zeros_like(xr)],
            np.r_[np.zeros_like(xl), np.ones_like(xr)],
            x,
            x * x,
        ]
    )
    sol = np.linalg.lstsq(a, np.concatenate([yl, yr]), rcond=None)[0]
    cl = np.array([sol[0], sol[2], sol[3]])
    cr = np.array([sol[1], sol[2], sol[3]])
    rms_l = float(np.sqrt(np.mean((yl - poly(cl, xl)) ** 2)))
    rms_r = float(np.sqrt(np.mean((yr - poly(cr, xr)) ** 2)))
    if max(rms_l, rms_r) > 2.5 * cfg.inlier_m:
        return None
    return (
        dataclasses.replace(left, coeffs=cl, rms_m=rms_l),
        dataclasses.replace(right, coeffs=cr, rms_m=rms_r),
    )


def _width_ok(left: LineFit, right: LineFit, cfg: GeometryConfig) -> bool:
    w0 = float(left.y(0.0) - right.y(0.0))
    w20 = float(left.y(20.0) - right.y(20.0))
    lo, hi = cfg.lane_width_range_m
    return lo <= w0 <= hi and abs(w20 - w0) <= cfg.parallel_tolerance_m


def _plausible_pair(
    left: LineFit, right: LineFit, cfg: GeometryConfig
) -> tuple[LineFit, LineFit] | None:
    pair = joint_pair(left, right, cfg)
    return pair if pair is not None and _width_ok(*pair, cfg) else None


def pick_ego_lines(
    lines: list[LineFit], cfg: GeometryConfig, prior: Coeffs | None, width: float
) -> tuple[LineFit | None, LineFit | None]:
    """The markings bounding the ego lane: (left, right), either may be None."""
    lines = [f for f in lines if f.quality >= cfg.min_line_quality]
    if prior is not None:
        want = {"left": prior[0] + width / 2, "right": prior[0] - width / 2}
        chosen = {}
        for side, target in want.items():
            near = [f for f in lines if abs(float(f.y(0.0)) - target) < cfg.side_gate_m]
            chosen[side] = min(near, key=lambda f: abs(float(f.y(0.0)) - target), default=None)
        left, right = chosen["left"], chosen["right"]
        if left is not None and right is not None:
            pair = _plausible_pair(left, right, cfg)
            if pair is not None:
                return pair
            dl = abs(float(left.y(0.0)) - want["left"])
            dr = abs(float(right.y(0.0)) - want["right"])
            left, right = (left, None) if dl <= dr else (None, right)
        return left, right
    lefts = sorted((f for f in lines if f.y(0.0) > 0.0), key=lambda f: float(f.y(0.0)))
    rights = sorted((f for f in lines if f.y(0.0) <= 0.0), key=lambda f: -float(f.y(0.0)))
    pairs = [p for a in lefts for b in rights if (p := _plausible_pair(a, b, cfg)) is not None]
    if pairs:  # the nearest pair that makes a plausible lane
        return min(pairs, key=lambda p: float(p[0].y(0.0) - p[1].y(0.0)))
    # No plausible pair: the strongest of the two nearest lines alone.
    near = lefts[:1] + rights[:1]
    if not near:
        return None, None
    best = max(near, key=lambda f: f.quality)
    return (best, None) if best.y(0.0) > 0.0 else (None, best)


def measure(
    left: LineFit | None, right: LineFit | None, width: float, cfg: GeometryConfig
) -> tuple[Coeffs, float, float] | None:
    """(centre coefficients, lane width, confidence) from the ego lines, or None."""
    if left is not None and right is not None:
        w = float(left.y(0.0) - right.y(0.0))
        return (left.coeffs + right.coeffs) / 2.0, w, 0.5 * (left.quality + right.quality)
    if left is not None:
        return left.coeffs - np.array([width / 2, 0.0, 0.0]), width, 0.6 * left.quality
    if right is not None:
        return right.coeffs + np.array([width / 2, 0.0, 0.0]), width, 0.6 * right.quality
    return None


def move_coeffs(c: Coeffs, dx: float, dy: float, dyaw: float, length_m: float = 40.0) -> Coeffs:
    """Re-express a line y(x) in a frame moved by (dx, dy, dyaw) (the ego motion)."""
    xs = np.linspace(-5.0, length_m, 16)
    ys = poly(c, xs)
    cos, sin = math.cos(dyaw), math.sin(dyaw)
    px, py = xs - dx, ys - dy
    nx, ny = cos * px + sin * py, -sin * px + cos * py
    return np.polyfit(nx, ny, 2)[::-1]


# --------------------------------------------------------------------------- tracking


class LaneTracker:
    """Frame-to-frame lane estimation: measure, gate, smooth, or hold with decaying confidence.

    Call `update(mask, motion)` once per frame; `motion` is the vehicle's displacement
    (dx, dy, dyaw) since the previous frame in the previous vehicle frame, when odometry has it.
    The tracker is also a `LaneCenterFn` for the ROS node: `tracker(mask)` returns the centre
    line's points, or None while the lane is lost.
    """

    def __init__(self, camera: Camera, cfg: GeometryConfig | None = None, seed: int = 0) -> None:
        self.camera = camera
        self.cfg = cfg or GeometryConfig()
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.estimate: LaneEstimate | None = None
        self.width = self.cfg.lane_width_m
        self._suspect = 0
        self.lines: list[LineFit] = []
        self.points = np.zeros((0, 2))

    def _predict(self, motion: tuple[float, float, float] | None) -> LaneEstimate | None:
        est = self.estimate
        if est is None or motion is None:
            return est
        return dataclasses.replace(est, center=move_coeffs(est.center, *motion))

    def update(
        self, mask: np.ndarray, motion: tuple[float, float, float] | None = None
    ) -> LaneEstimate | None:
        cfg = self.cfg
        pred = self._predict(motion)
        prior = pred.center if pred is not None and pred.confidence >= cfg.min_confidence else None
        self.points = ground_points(mask, self.camera, cfg)
        self.lines = find_lines(self.points, cfg, prior, self.rng)
        left, right = pick_ego_lines(self.lines, cfg, prior, self.width)
        meas = measure(left, right, self.width, cfg)
        if meas is not None and prior is not None:
            jump = abs(float(poly(meas[0], 10.0) - poly(prior, 10.0)))
            if jump > cfg.jump_gate_m and self._suspect < cfg.jump_accept_frames:
                self._suspect += 1
                meas = None  # a jump: hold the prediction for now
            else:
                self._suspect = 0
        if meas is None:
            if pred is None:
                return None
            self.estimate = dataclasses.replace(
                pred, confidence=pred.confidence * cfg.hold_decay, lines_found=0, held=True,
                left=None, right=None,
            )  # fmt: skip
            return self.estimate
        center, width, conf = meas
        if pred is not None and prior is not None:
            # A measurement weaker than the running estimate moves it less.
            a = cfg.smoothing * min(1.0, conf / max(pred.confidence, 1e-6))
            a = min(1.0, max(0.05, a))
            center = (1.0 - a) * pred.center + a * center
            conf = max(conf, pred.confidence * cfg.hold_decay)
        if left is not None and right is not None:  # learn the lane width slowly
            self.width = 0.8 * self.width + 0.2 * width
        n = int(left is not None) + int(right is not None)
        self.estimate = LaneEstimate(center, self.width, float(conf), n, False, left, right)
        return self.estimate

    def __call__(self, mask: np.ndarray) -> list[tuple[float, float]] | None:
        est = self.update(mask)
        if est is None or est.confidence < self.cfg.min_confidence:
            return None
        return est.center_points(self.cfg.path_length_m, self.cfg.path_step_m)
