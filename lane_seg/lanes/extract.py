"""Lane-line instances from a lane mask: polylines in the image, left to right, ego lines marked.

`extract_lanes(mask, prob=None, camera=None)` is the whole step, for the node, `lane-seg infer`
and the evaluation alike: a model's 512x256 mask or any other (the simulator's exact labels,
CULane's or TuSimple's label masks). It is the only way from a mask to lane lines: the lane
centre (`lane_seg.lanes.tracker`, a filter over time on these lines), the `~/lanes` topic, the
lane metrics and pseudo-labels all start from it. Lines are found on the ground plane: there
lane lines are parallel and keep their spacing up to the horizon, so lines that run together
near the vanishing point in the image stay apart, and the dashes of one line lie on one curve.

1. Reading the mask (`lane_seg.lanes.mask`): row runs of lane pixels, one point at each run's
   centre; components that are specks, round blobs or lie across the road (stop lines) are
   dropped, as are runs wider on the ground than a marking (`max_run_m`) and runs above the
   horizon.
2. Grouping (`lane_seg.lanes.grouping`): histogram seeds and quadratic fits with a curvature
   prior and gap bridging, for all lines at once; the result is `LineFit`s on the ground.
3. Instances (`instances_from_fits`): each line drawn from where its points start (or from the
   bottom of the view when that is less than a dash gap away: the benchmarks label lines down
   to the bottom too; below its own points a line runs parallel to the best line seen nearer)
   to its farthest point, vertices evenly spaced in rows, clipped to the image. Confidence
   is the fit's support (0..1), times the mean probability at its points when a probability
   map is given. Lines are ordered by where they cross the bottom row; the nearest one on each
   side of the image's centre column is ego-left / ego-right. With a known camera each
   instance keeps its `LineFit` (`fit`), which the tracker reads.

The camera:

- Known (the simulator's frames; the node once it has camera info): used exactly, and the
  instances carry their ground points in metres (vehicle frame, x ahead, y left).
- Unknown (benchmark frames, videos): a level pinhole camera whose principal point is the
  vanishing point of this mask's lines (`lane_mask.estimate_vanishing_point`). For any such
  camera, lines that meet at the vanishing point in the image are parallel on the ground,
  whatever its focal length and height, which only scale the ground; the bottom row is put
  5 m ahead of a camera 1.5 m up, which gives lanes a plausible width in metres, so the metric
  thresholds of the grouping still fit. Without a usable vanishing point (fewer than two lines
  with distinct directions) the default is the image's centre column at 40% of its height.
  These ground points are not metric, so such instances carry none (no `ground`, no `fit`).
  An image-space grouping was the alternative; lines converging on the vanishing point are
  what it handles worst.

For a model's output, in the node or offline, `lane_seg.runtime.segmenter` does it
(`Segmenter.segment_lanes`, `lanes_from_probability`):

    prob = frame_probability(logits, (height, width), preprocess)  # 512x256, the model's scale
    lanes = extract_lanes(prob > threshold, prob, camera)  # in the mask's pixels
    lanes = [lane.scaled((512, 256), (width, height)) for lane in lanes]  # in the frame's

The mask is brought to a working size first (the model's 512x256 unless `LaneConfig` says
otherwise), so the tuning is in one set of pixels; polylines come back in the mask's pixels.
Sizes are (width, height) throughout, as in OpenCV and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.geometry import LineFit, camera_for_shape, poly
from lane_seg.lanes.grouping import GroupingConfig, group_lines
from lane_seg.lanes.mask import (
    GroundPlane,
    MaskConfig,
    Runs,
    band_pieces,
    binary_mask,
    camera_vanishing_point,
    default_vanishing_point,
    estimate_vanishing_point,
    ground_plane,
    line_components,
    measure,
    nominal_camera,
    row_runs,
)

EGO_LEFT, EGO_RIGHT = "left", "right"


@dataclass(frozen=True)
class LaneInstance:
    """One lane line. `points` are x, y image pixels ordered by y (top to bottom)."""

    points: np.ndarray  # (N, 2) float64
    confidence: float  # 0..1
    ego: str | None = None  # EGO_LEFT / EGO_RIGHT for the lines bounding the ego lane
    ground: np.ndarray | None = field(default=None, repr=False)  # (N, 2) metres, vehicle frame
    fit: LineFit | None = field(default=None, repr=False)  # on the ground, with a known camera

    def x_at(self, y: np.ndarray | float) -> np.ndarray:
        """x on the polyline at image rows `y` (linear between points; NaN outside it)."""
        ys = np.asarray(y, dtype=np.float64)
        p = self.points
        if len(p) == 0:
            return np.full(ys.shape, np.nan)
        x = np.interp(ys, p[:, 1], p[:, 0])
        return np.where((ys >= p[0, 1]) & (ys <= p[-1, 1]), x, np.nan)

    def scaled(self, from_size: tuple[int, int], to_size: tuple[int, int]) -> LaneInstance:
        """The same line in a frame of `to_size` (width, height); pixel centres map to pixel
        centres, as when the mask was resized from the frame."""
        s = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]])
        return dataclasses.replace(self, points=(self.points + 0.5) * s - 0.5)


@dataclass(frozen=True)
class LaneConfig:
    """Tuning of the extraction. Pixel sizes are in working-size pixels."""

    work_size: tuple[int, int] = (512, 256)  # (width, height)
    mask: MaskConfig = MaskConfig()  # runs, blobs, vanishing point, nominal camera
    grouping: GroupingConfig = GroupingConfig()
    max_run_m: float = 2.5  # runs wider than this on the ground are not one marking
    min_quality: float = 0.1  # weaker lines are dropped
    # Instances.
    point_step_px: float = 4.0  # polyline vertices about this many rows apart
    extend_gap_m: float = 16.0  # a line starting this close to the bottom of the view is
    # drawn down to it (a dash gap: benchmarks label lines down to the bottom)


# --------------------------------------------------------------------------- instances


def _clip(uv: np.ndarray, inside: np.ndarray, w: int, h: int) -> np.ndarray:
    """The stretch of a polyline inside the image (`inside`: each vertex within the pixels'
    outer edges, -0.5 and size - 0.5), its ends cut exactly at the border."""
    found = inside.nonzero()[0]
    if len(found) == 0:
        return uv[:0]
    first, last = int(found[0]), int(found[-1])
    if first == 0 and last == len(uv) - 1:
        return uv
    hi = (w - 0.5, h - 0.5)

    def cut(a: list[float], b: list[float]) -> list[float]:  # a inside, b outside
        t = [
            (-0.5 - p) / (q - p) if q < -0.5 else (m - p) / (q - p) if q > m else 1.0
            for p, q, m in zip(a, b, hi, strict=True)
        ]
        return [p + min(t) * (q - p) for p, q in zip(a, b, strict=True)]

    a, b = int(first > 0), int(last < len(uv) - 1)  # cut ends before and after
    out = np.empty((a + last + 1 - first + b, 2))
    out[a : len(out) - b] = uv[first : last + 1]
    if a:
        out[0] = cut(uv[first].tolist(), uv[first - 1].tolist())
    if b:
        out[-1] = cut(uv[last].tolist(), uv[last + 1].tolist())
    return out


def _confidences(
    fits: list[LineFit],
    pts: np.ndarray,
    owner: np.ndarray,
    plane: GroundPlane,
    prob: np.ndarray | None,
) -> np.ndarray:
    """Each fit's quality, times the mean probability at its points' pixels when given
    (`pts`: all fits' points, `owner`: the fit of each)."""
    conf = np.array([f.quality for f in fits])
    if prob is not None:
        uv, _ = plane.pixels(pts)
        h, w = prob.shape
        px = np.rint(uv).astype(np.int64)
        np.minimum(np.maximum(px, 0, out=px), (w - 1, h - 1), out=px)
        at = prob[px[:, 1], px[:, 0]]
        conf = conf * np.bincount(owner, at, len(fits)) / np.bincount(owner, None, len(fits))
    return np.minimum(conf, 1.0)


def _ego(bottom_x: list[float], centre: float) -> dict[int, str]:
    """The nearest line on each side of `centre` at the bottom row: {index: side}."""
    left = [i for i, u in enumerate(bottom_x) if u < centre]
    right = [i for i, u in enumerate(bottom_x) if u >= centre]
    return ({left[-1]: EGO_LEFT} if left else {}) | ({right[0]: EGO_RIGHT} if right else {})


def _parallel_extension(
    fits: list[LineFit], near: np.ndarray, slack_m: float = 1.0
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The lines' lateral offsets: y(line, x) of line `line[i]` at `x[i]`. Nearer than its own
    nearest point (`near`), a line follows the best line (highest quality) of those whose
    points reach at least `slack_m` nearer, shifted to meet it: lane lines are parallel on the
    ground, so a line seen only far away, on a bend, is carried down along the road's own curve
    rather than along the extrapolation of a fit to a few far dashes. A line with none nearer
    keeps its own fit. All lines at once: a few array operations, whatever their number."""
    c = np.array([f.coeffs for f in fits])
    nearer = near[None, :] < near[:, None] - slack_m  # (K, K): line j reaches nearer than i
    quality = np.array([f.quality for f in fits])
    ref = np.argmax(np.where(nearer, quality, -np.inf), axis=1)  # the first best
    alone = ~nearer.any(axis=1)
    ref[alone] = alone.nonzero()[0]
    start = np.where(alone, -np.inf, near)  # where the line leaves its own fit
    shift = poly(c.T, near) - poly(c[ref].T, near)

    def y(line: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.where(x < start[line], poly(c[ref[line]].T, x) + shift[line], poly(c[line].T, x))

    return y


def _row_spaced(near: np.ndarray, far: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per line, `counts` distances from `far` to `near` evenly spaced in 1 / distance (image
    rows), all lines in one array: np.linspace's arithmetic, without a call per line."""
    start, stop = 1.0 / far, 1.0 / near
    first = counts.cumsum() - counts
    t = (np.arange(counts.sum()) - np.repeat(first, counts)).astype(np.float64)
    inv = t * np.repeat((stop - start) / (counts - 1), counts) + np.repeat(start, counts)
    inv[first + counts - 1] = stop
    return 1.0 / inv


def instances_from_fits(
    fits: list[LineFit],
    cam: Camera,
    cfg: LaneConfig | None = None,
    prob: np.ndarray | None = None,
    metric: bool = True,
) -> list[LaneInstance]:
    """Lane instances, left to right with the ego lines marked, from `group_lines`' fits.

    Each fit is drawn from its nearest point (or from the bottom of the view, when that is
    less than `extend_gap_m` away) to its farthest, sampled evenly in image rows and clipped to
    the image of `cam`. Confidence: the fit's quality, times the mean probability at its points
    when `prob` (HxW at the camera's size) is given. `metric`: keep the ground points and
    the fit (the camera is the real one).
    """
    cfg = cfg or LaneConfig()
    g = cfg.grouping
    fits = [f for f in fits if f.quality >= cfg.min_quality and f.pts is not None]
    if not fits:
        return []
    k, w, h = len(fits), cam.width, cam.height
    plane = ground_plane(cam)
    bottom, ok = plane.points(np.array([[(w - 1) / 2, h - 1.0]]))
    x_view = float(bottom[0, 0]) if ok[0] else g.x_range_m[0]
    pts = np.vstack([f.pts for f in fits])
    sizes = [len(f.pts) for f in fits]
    owner = np.repeat(np.arange(k), sizes)
    # Per line: nearest and farthest x drawn, and x_view where it crosses the bottom row.
    first = np.fromiter(itertools.accumulate(sizes[:-1], initial=0), np.int64, k)
    ends = np.column_stack(
        [np.minimum.reduceat(pts[:, 0], first), np.maximum.reduceat(pts[:, 0], first)]
        + [np.full(k, x_view)]
    )
    lateral = _parallel_extension(fits, ends[:, 0].copy())
    reach_bottom = ends[:, 0] - x_view <= cfg.extend_gap_m
    ends[reach_bottom, 0] = np.minimum(ends[reach_bottom, 0], 0.9 * x_view)  # clipped below
    ys = lateral(np.repeat(np.arange(k), 3), ends.ravel())
    uv, _ = plane.pixels(np.column_stack([ends.ravel(), ys]))
    uv = uv.reshape(k, 3, 2)
    rows = np.abs(uv[:, 0, 1] - uv[:, 1, 1]) / cfg.point_step_px
    counts = 1 + np.minimum(np.maximum(rows, 2), 200).astype(int)
    # Vertices evenly spaced in rows (rows go with 1 / distance), all lines in one projection.
    xs = _row_spaced(ends[:, 0], ends[:, 1], counts)
    line = np.repeat(np.arange(k), counts)
    puv, depth = plane.pixels(np.column_stack([xs, lateral(line, xs)]))
    conf = _confidences(fits, pts, owner, plane, prob)
    # Ahead of the camera, by line, top to bottom; then each line clipped to the image.
    idx = (depth > 0).nonzero()[0]
    idx = idx[np.lexsort((puv[idx, 1], line[idx]))]
    puv, bounds = puv[idx], np.searchsorted(line[idx], np.arange(k + 1))
    u, v = puv[:, 0], puv[:, 1]
    inside = (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    polys = [
        _clip(puv[a:b], inside[a:b], w, h) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    drawn = [i for i in range(k) if len(polys[i]) >= 2]
    drawn.sort(key=lambda i: float(uv[i, 2, 0]))  # left to right where they cross the bottom
    ego = _ego([float(uv[i, 2, 0]) for i in drawn], (w - 1) / 2)
    ground = _ground_points(plane, [polys[i] for i in drawn]) if metric else [None] * len(drawn)
    return [
        LaneInstance(polys[i], float(conf[i]), ego.get(n), gpts, fits[i] if metric else None)
        for n, (i, gpts) in enumerate(zip(drawn, ground, strict=True))
    ]


def _ground_points(plane: GroundPlane, polys: list[np.ndarray]) -> list[np.ndarray]:
    """Each polyline's vertices on the ground (NaN where a vertex does not see it)."""
    if not polys:
        return []
    back, valid = plane.points(np.vstack(polys))
    back[~valid] = np.nan
    ends = list(itertools.accumulate(len(p) for p in polys))
    return [back[e - len(p) : e] for p, e in zip(polys, ends, strict=True)]


def extract_lanes(
    mask: np.ndarray,
    prob: np.ndarray | None = None,
    camera: Camera | None = None,
    cfg: LaneConfig | None = None,
) -> list[LaneInstance]:
    """Lane-line instances in a lane mask, left to right, in the mask's pixels.

    mask: HxW, lane where > 0 (0/255, 0/1, bool, or label-index masks such as CULane's).
    prob: HxW lane probabilities in [0, 1] (optional), folded into the confidences.
    camera: the camera the mask was seen with (at any resolution), or None for a nominal
    camera at the mask's own vanishing point (see the module docstring).
    """
    cfg = cfg or LaneConfig()
    size = cfg.work_size
    mask = np.asarray(mask)
    binary = binary_mask(mask, size)
    prob = _at_size(prob, mask.shape, size)
    runs = row_runs(binary)
    cam, vp = _camera(binary, runs, camera, cfg)
    plane = ground_plane(cam)
    n, comps = cv2.connectedComponents(binary, connectivity=8)
    comp = comps[runs.row, runs.start]
    kept = line_components(measure(runs, comp, n), plane, vp[1], cfg.mask)[comp]
    kept &= runs.row > vp[1]
    pts, valid = plane.points(np.column_stack([runs.centre[kept], runs.row[kept]]))
    g = cfg.grouping
    with np.errstate(invalid="ignore"):
        foot = pts[:, 0] / cam.fx  # lateral metres per pixel
        valid &= (pts[:, 0] >= g.x_range_m[0]) & (pts[:, 0] <= g.x_range_m[1])
        valid &= (np.abs(pts[:, 1]) <= g.y_max_m) & (runs.width[kept] * foot <= cfg.max_run_m)
    fits = group_lines(pts[valid], foot[valid], cfg.grouping)
    lanes = instances_from_fits(fits, cam, cfg, prob, metric=camera is not None)
    src = (mask.shape[1], mask.shape[0])
    return lanes if src == size else [lane.scaled(size, src) for lane in lanes]


def _at_size(
    prob: np.ndarray | None, shape: tuple[int, ...], size: tuple[int, int]
) -> np.ndarray | None:
    """The probability map at the working size (area-averaged), checked against the mask."""
    if prob is None:
        return None
    prob = np.asarray(prob, dtype=np.float32)
    if prob.shape != shape:
        raise ValueError(f"prob has shape {prob.shape}, the mask {shape}")
    if (prob.shape[1], prob.shape[0]) != size:
        prob = cv2.resize(prob, size, interpolation=cv2.INTER_AREA)
    return prob


def _camera(
    binary: np.ndarray, runs: Runs, camera: Camera | None, cfg: LaneConfig
) -> tuple[Camera, tuple[float, float]]:
    """The camera at the working size and its vanishing point: the given one, or the nominal
    camera at the vanishing point of the mask's strokes (a default one when there is none)."""
    size = (binary.shape[1], binary.shape[0])
    if camera is not None:
        return _known_camera(camera, size)
    pieces = measure(runs, *band_pieces(binary, runs, cfg.mask.band_px))
    vp = estimate_vanishing_point(pieces, size, cfg.mask)
    vp = vp or default_vanishing_point(size, cfg.mask)
    return nominal_camera(size, vp, cfg.mask), vp


@functools.lru_cache(maxsize=8)
def _known_camera(camera: Camera, size: tuple[int, int]) -> tuple[Camera, tuple[float, float]]:
    """A known camera at the working size and its vanishing point, kept for the next frames."""
    cam = camera_for_shape(camera, size[1], size[0])
    return cam, camera_vanishing_point(cam)


def nearest_lines(lanes: list[LaneInstance], per_side: int) -> list[LaneInstance]:
    """The `per_side` lines on each side of the ego lane nearest to it (ego lines included),
    left to right; `lanes` must be ordered left to right as `extract_lanes` returns them.
    CULane labels only the ego lane's lines and its neighbours' (per_side=2)."""
    left = [i for i, lane in enumerate(lanes) if lane.ego == EGO_LEFT]
    right = [i for i, lane in enumerate(lanes) if lane.ego == EGO_RIGHT]
    split = left[0] + 1 if left else (right[0] if right else len(lanes))
    return lanes[max(0, split - per_side) : split + per_side]


def ego_lines(lanes: list[LaneInstance]) -> tuple[LaneInstance | None, LaneInstance | None]:
    """(ego-left, ego-right) among instances; either may be None."""
    left = next((lane for lane in lanes if lane.ego == EGO_LEFT), None)
    right = next((lane for lane in lanes if lane.ego == EGO_RIGHT), None)
    return left, right
