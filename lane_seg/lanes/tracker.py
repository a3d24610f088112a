"""The ego lane over time: a filter on the lane lines `extract_lanes` finds in each frame.

There is one way from a mask to lane lines (`lane_seg.lanes.extract`); with a known camera
each line carries its fit on the ground (`LaneInstance.fit`, vehicle frame, metres). Per frame
the tracker

1. picks the ego lane's two lines among them: the nearest pair on either side of the vehicle
   that makes a plausible, parallel lane, or, once a lane is tracked, the lines nearest to
   where the prediction expects them (gated);
2. refits the pair as parallel lines (own offsets, shared heading and curvature) on their
   points within `x_range_m`, the stretch a controller looks at; with one line the other
   comes from the learned lane width, with none the last estimate is held, its confidence
   decaying each frame;
3. smooths: the previous centre line is moved by the ego motion (when known) and blended with
   the measurement, weighted by its confidence; a measurement that jumps far from the
   prediction is refused a few times before it is believed.

The lane centre is the mean of the two ego lines. Vehicle frame (REP-103): x forward, y left,
origin where `Camera` puts it. No ROS import here: the node, the closed loop and the tests all
call the same code.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.geometry import Coeffs, LineFit, center_points, poly


@dataclass(frozen=True)
class TrackerConfig:
    """Tuning of the ego-lane filter (metres unless stated)."""

    x_range_m: tuple[float, float] = (4.0, 25.0)  # the ego lines are refitted on this stretch:
    # a quadratic is off a 60 m radius by 0.2 m at 25 m, by 0.7 m at 38 m
    inlier_m: float = 0.15  # a parallel refit off by 2.5 times this is no pair
    trim_m: float = 0.3  # points further than this off a refit are left out of the next one
    lane_width_m: float = 3.5  # prior lane width before one is measured
    lane_width_range_m: tuple[float, float] = (2.4, 5.0)
    parallel_tolerance_m: float = 0.8  # width change between x=0 and x=20 still "parallel"
    min_line_quality: float = 0.2  # weaker lines (speckle, stray blobs) are not lane lines
    side_gate_m: float = 1.0  # a line must be this close to where the prior expects it
    smoothing: float = 0.6  # weight of a full-confidence measurement against the prediction
    hold_decay: float = 0.85  # confidence factor per frame while nothing is measured
    jump_gate_m: float = 1.0  # centre moved more than this from the prediction: suspect
    jump_accept_frames: int = 4  # ... believed after this many suspect frames in a row
    min_confidence: float = 0.05  # below this the estimate counts as lost
    path_length_m: float = 30.0
    path_step_m: float = 1.0


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


def ground_fits(lanes: Sequence[LaneInstance]) -> list[LineFit]:
    """The ground fits of lane instances found with a known camera (others have none)."""
    return [lane.fit for lane in lanes if lane.fit is not None]


# --------------------------------------------------------------------------- the ego pair


def _shared_shape(
    pts: list[np.ndarray], cfg: TrackerConfig
) -> tuple[list[Coeffs], list[float]] | None:
    """Lines through each point set with their own offsets and one shared heading and
    curvature, fitted on the points within `x_range_m`, twice more without the points further
    than `trim_m` off (a few far points of a bend read off a stroke lying flat in the image
    would otherwise tilt the near field); their coefficients and rms, or None when a line has
    fewer than 3 points there."""
    lo, hi = cfg.x_range_m
    sets = [p[(p[:, 0] >= lo) & (p[:, 0] <= hi)] for p in pts]
    if any(len(p) < 3 for p in sets):
        return None
    x = np.concatenate([p[:, 0] for p in sets])
    y = np.concatenate([p[:, 1] for p in sets])
    owner = np.repeat(np.arange(len(sets)), [len(p) for p in sets])
    a = np.column_stack([owner == k for k in range(len(sets))] + [x, x * x])  # float64
    keep = np.ones(len(x), bool)
    for _ in range(3):
        sol = np.linalg.lstsq(a[keep], y[keep], rcond=None)[0]
        resid = np.abs(y - a @ sol)
        trimmed = resid <= cfg.trim_m
        if not np.count_nonzero(trimmed != keep):  # the same points again: the same fit
            break
        if np.bincount(owner[trimmed], minlength=len(sets)).min() < 3:
            break
        keep = trimmed
    coeffs = [np.array([sol[k], sol[-2], sol[-1]]) for k in range(len(sets))]
    rms = []
    for k in range(len(sets)):
        r = resid[keep & (owner == k)]
        rms.append(math.sqrt((r * r).sum() / len(r)))
    return coeffs, rms


def refit(line: LineFit, cfg: TrackerConfig) -> LineFit:
    """One line refitted on its points within `x_range_m` (as a pair is), or as it was."""
    if line.pts is None or (found := _shared_shape([line.pts], cfg)) is None:
        return line
    return dataclasses.replace(line, coeffs=found[0][0], rms_m=found[1][0])


def joint_pair(left: LineFit, right: LineFit, cfg: TrackerConfig) -> tuple[LineFit, LineFit] | None:
    """Refit two lines as parallel (own offsets, shared heading and curvature, `_shared_shape`).

    A dashed line seen as two dashes cannot pin down its own curvature, but the solid line
    beside it can; sharing the shape carries it over. None when the two do not fit one shape
    (a lane that merges or splits).
    """
    if left.pts is None or right.pts is None:
        return left, right
    found = _shared_shape([left.pts, right.pts], cfg)
    if found is None:
        return left, right
    (cl, cr), (rms_l, rms_r) = found
    if max(rms_l, rms_r) > 2.5 * cfg.inlier_m:
        return None
    return (
        dataclasses.replace(left, coeffs=cl, rms_m=rms_l),
        dataclasses.replace(right, coeffs=cr, rms_m=rms_r),
    )


def _width_ok(left: LineFit, right: LineFit, cfg: TrackerConfig) -> bool:
    w0 = float(left.y(0.0) - right.y(0.0))
    w20 = float(left.y(20.0) - right.y(20.0))
    lo, hi = cfg.lane_width_range_m
    return lo <= w0 <= hi and abs(w20 - w0) <= cfg.parallel_tolerance_m


def _plausible_pair(
    left: LineFit, right: LineFit, cfg: TrackerConfig
) -> tuple[LineFit, LineFit] | None:
    pair = joint_pair(left, right, cfg)
    return pair if pair is not None and _width_ok(*pair, cfg) else None


def pick_ego_lines(
    lines: list[LineFit], cfg: TrackerConfig, prior: Coeffs | None, width: float
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
        return _refit_one(left, right, cfg)
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
    return _refit_one(*((best, None) if best.y(0.0) > 0.0 else (None, best)), cfg)


def _refit_one(
    left: LineFit | None, right: LineFit | None, cfg: TrackerConfig
) -> tuple[LineFit | None, LineFit | None]:
    """A lone ego line refitted on the tracker's stretch, as a pair is."""
    return (
        refit(left, cfg) if left is not None else None,
        refit(right, cfg) if right is not None else None,
    )


def measure(
    left: LineFit | None, right: LineFit | None, width: float
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
    """Frame-to-frame ego lane: measure, gate, smooth, or hold with decaying confidence.

    Call `update(lanes, motion)` once per frame with that frame's `extract_lanes` (found with
    the camera, so the lines carry their ground fits); `motion` is the vehicle's displacement
    (dx, dy, dyaw) since the previous frame in the previous vehicle frame, when odometry has
    it. `tracker(lanes)` returns the centre line's points (a nav_msgs/Path's poses), or None
    while the lane is lost.
    """

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        self.estimate: LaneEstimate | None = None
        self.width = self.cfg.lane_width_m
        self._suspect = 0

    def _predict(self, motion: tuple[float, float, float] | None) -> LaneEstimate | None:
        est = self.estimate
        if est is None or motion is None:
            return est
        return dataclasses.replace(est, center=move_coeffs(est.center, *motion))

    def update(
        self, lanes: Sequence[LaneInstance], motion: tuple[float, float, float] | None = None
    ) -> LaneEstimate | None:
        cfg = self.cfg
        pred = self._predict(motion)
        prior = pred.center if pred is not None and pred.confidence >= cfg.min_confidence else None
        left, right = pick_ego_lines(ground_fits(lanes), cfg, prior, self.width)
        meas = measure(left, right, self.width)
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

    def __call__(self, lanes: Sequence[LaneInstance]) -> list[tuple[float, float]] | None:
        est = self.update(lanes)
        if est is None or est.confidence < self.cfg.min_confidence:
            return None
        return est.center_points(self.cfg.path_length_m, self.cfg.path_step_m)
