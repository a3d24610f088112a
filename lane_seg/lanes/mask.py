"""What a lane mask shows before lines are grouped: row runs, strokes, blobs, the vanishing point.

- Runs: every horizontal run of lane pixels in a row, one point at its centre. A few hundred per
  frame; the grouping (`lane_seg.lanes.grouping`) works on them, not on thousands of pixels.
- Components: the mask's 8-connected components. Single strokes (one run per row) that are
  specks, round blobs, or lie across the road on the ground (stop lines, crossings) are not
  lane lines. Components made of several strokes (lines that run into each other near the
  horizon) are not judged by their shape.
- Band pieces: the mask cut into horizontal bands and labelled band by band, so that lines
  joined near the horizon are separate pieces lower down. Each stroke's direction comes from a
  line through its run centres, which a stroke's thickness does not bias.
- Vanishing point: where two strokes of the same band meet. Lane lines at the same distance
  are parallel on the ground, even on a bend, so those meeting points lie on the horizon row.
- Camera: a known one, or a nominal level camera whose principal point is that vanishing
  point (see `lane_seg.lanes.extract`), and its ground plane as two homographies.

Pixel sizes are those of the mask given; sizes are (width, height).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.camera import Camera


@dataclass(frozen=True)
class MaskConfig:
    """Tuning of the mask reading, in pixels of the working size (512x256 by default)."""

    band_px: int = 16  # height of the bands strokes are cut into
    min_area_px: int = 2  # smaller components are specks
    shape_px: float = 6.0  # strokes at least this long are judged by their shape:
    round_px: int = 60  # ... strokes this large must be elongated,
    min_elongation: float = 2.0  # ... major / minor axis at least this,
    across_deg: float = 60.0  # ... and head less than this off straight ahead on the ground
    across_min_rows: float = 12.0  # (judged only this far below the horizon, where rows are fine)
    vp_min_rows: int = 6  # band pieces this tall give directions for the vanishing point
    vp_min_angle_deg: float = 8.0  # two directions must differ this much to meet reliably
    default_vp: tuple[float, float] = (0.5, 0.4)  # as shares of width and height, when unknown
    near_m: float = 5.0  # nominal camera: the bottom row's distance ahead...
    height_m: float = 1.5  # ... seen from this height


def binary_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """0/1 uint8 lane mask at `size` from any HxW mask where lane is > 0."""
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty HxW array, got shape {mask.shape}")
    lane = np.ascontiguousarray(mask if mask.dtype == np.bool_ else mask > 0)
    if (mask.shape[1], mask.shape[0]) == size:
        return lane.view(np.uint8)
    # Area averaging keeps thin lines that a nearest-neighbour downscale would drop.
    m = cv2.resize(lane.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_AREA)
    return (m > 51).view(np.uint8)


@dataclass
class Runs:
    """Horizontal runs of lane pixels, in row-major order."""

    row: np.ndarray  # int64
    start: np.ndarray  # int64 first column
    width: np.ndarray  # float64 pixels

    @property
    def centre(self) -> np.ndarray:
        return self.start + (self.width - 1) / 2.0

    def __len__(self) -> int:
        return len(self.row)


def row_runs(binary: np.ndarray) -> Runs:
    """The runs of a 0/1 uint8 (or bool) mask, from the columns where a row, padded with a zero
    on either side, changes value (cv2.findNonZero lists them row by row: start, end, ...)."""
    if binary.dtype == np.bool_:
        binary = binary.view(np.uint8)
    padded = cv2.copyMakeBorder(binary, 0, 0, 1, 1, cv2.BORDER_CONSTANT, value=0)
    change = cv2.findNonZero(cv2.compare(padded[:, 1:], padded[:, :-1], cv2.CMP_NE))
    xy = np.zeros((0, 2), np.int64) if change is None else change.reshape(-1, 2).astype(np.int64)
    starts, ends = xy[0::2], xy[1::2, 0]
    return Runs(starts[:, 1], starts[:, 0], (ends - starts[:, 0]).astype(np.float64))


def band_pieces(binary: np.ndarray, runs: Runs, band_px: int) -> tuple[np.ndarray, int]:
    """For each run, its 8-connected piece of its horizontal band (labels 1..n-1), and n.

    One labelling call: the bands are stacked with an empty row between them, laid out by array
    views; each run's label is read where its row landed (no label image is copied back).
    """
    h, w = binary.shape
    nb = -(-h // band_px)
    padded = np.zeros((nb * (band_px + 1), w), np.uint8)
    stacked = padded.reshape(nb, band_px + 1, w)
    full = nb - 1 if h % band_px else nb  # bands with all their rows
    stacked[:full, :band_px] = binary[: full * band_px].reshape(full, band_px, w)
    if full < nb:
        stacked[full, : h - full * band_px] = binary[full * band_px :]
    n, labels = cv2.connectedComponents(padded, connectivity=8)
    return labels[runs.row + runs.row // band_px, runs.start], n


class Shapes:
    """Per label (index 0 unused): second moments of its pixels and the line through its run
    centres, computed from the runs when first read (each user reads a few of them: the
    component filter the moments, the vanishing point the run-centre lines)."""

    def __init__(self, runs: Runs, label: np.ndarray, n: int) -> None:
        self._w, self._u, self._label, self._n = runs.width, runs.centre, label, n
        self._v = runs.row.astype(np.float64)

    def _sum(self, weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(self._label, weights, self._n)

    @functools.cached_property
    def area(self) -> np.ndarray:
        return self._sum(self._w)

    @functools.cached_property
    def centre(self) -> np.ndarray:
        """(n, 2) x, y of the pixels' mean."""
        w, safe = self._w, np.maximum(self.area, 1.0)
        return np.stack([self._sum(w * self._u) / safe, self._sum(w * self._v) / safe], axis=1)

    @functools.cached_property
    def _moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Principal axis (unit, pointing up the image), variance along it and across it."""
        w, label, safe = self._w, self._label, np.maximum(self.area, 1.0)
        du, dv = self._u - self.centre[label, 0], self._v - self.centre[label, 1]
        # A run is a row of w pixels: its own spread along x is (w^2 - 1) / 12, plus a pixel's.
        sxx = self._sum(w * du * du + w * (w * w - 1) / 12) / safe + 1.0 / 12.0
        syy = self._sum(w * dv * dv) / safe + 1.0 / 12.0
        sxy = self._sum(w * du * dv) / safe
        half_diff = np.sqrt(((sxx - syy) / 2) ** 2 + sxy**2)
        mean = (sxx + syy) / 2
        theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        axis = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        axis[axis[:, 1] > 0] *= -1
        return axis, mean + half_diff, mean - half_diff

    @property
    def axis(self) -> np.ndarray:
        """(n, 2) unit major axis, pointing up the image."""
        return self._moments[0]

    @property
    def major(self) -> np.ndarray:
        """Variance along the axis."""
        return self._moments[1]

    @property
    def minor(self) -> np.ndarray:
        return self._moments[2]

    @functools.cached_property
    def runs(self) -> np.ndarray:
        """Number of runs."""
        return self._sum(None)

    @functools.cached_property
    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        top, bottom = np.full(self._n, np.inf), np.full(self._n, -np.inf)
        np.minimum.at(top, self._label, self._v)
        np.maximum.at(bottom, self._label, self._v)
        return top, bottom

    @property
    def top(self) -> np.ndarray:
        """First row."""
        return self._rows[0]

    @property
    def bottom(self) -> np.ndarray:
        """Last row."""
        return self._rows[1]

    @functools.cached_property
    def track(self) -> np.ndarray:
        """(n, 2) mean run centre x, y."""
        safe = np.maximum(self.runs, 1.0)
        return np.stack([self._sum(self._u) / safe, self._sum(self._v) / safe], axis=1)

    @functools.cached_property
    def slope(self) -> np.ndarray:
        """dx/dy of the least-squares line through the run centres."""
        label = self._label
        eu, ev = self._u - self.track[label, 0], self._v - self.track[label, 1]
        return self._sum(eu * ev) / np.maximum(self._sum(ev * ev), 1e-9)

    @property
    def elongation(self) -> np.ndarray:
        return np.sqrt(self.major / np.maximum(self.minor, 1.0 / 12.0))

    @property
    def length(self) -> np.ndarray:
        return np.sqrt(12.0 * self.major)

    @property
    def single_stroke(self) -> np.ndarray:
        """About one run per row: a stroke or a blob, not strokes joined side by side."""
        return self.runs <= 1.2 * (self.bottom - self.top + 1)


def measure(runs: Runs, label: np.ndarray, n: int) -> Shapes:
    """Shapes of labels 0..n-1, `label` giving each run's label."""
    return Shapes(runs, label, n)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def estimate_vanishing_point(
    pieces: Shapes, size: tuple[int, int], cfg: MaskConfig | None = None
) -> tuple[float, float] | None:
    """The vanishing point (x, y in pixels) of the band pieces' strokes, or None.

    Every two strokes of one band (tall enough, not lying flat, directions at least
    `vp_min_angle_deg` apart) meet at a point; lane lines at one distance are parallel on the
    ground, so those points lie on the horizon row even on a bend. The point is their weighted
    median, row and column apart (weights: the shorter stroke's rows times the sine of the
    angle between the two), which strays from curbs or cars hardly move. None without any
    meeting point above its strokes and within a frame's width of the image.
    """
    cfg = cfg or MaskConfig()
    w, h = size
    strokes = pieces.single_stroke & (pieces.runs >= cfg.vp_min_rows)
    idx = (strokes & (np.abs(pieces.slope) <= 6.0)).nonzero()[0]
    idx = idx[idx > 0]
    if len(idx) < 2:
        return None
    band = (pieces.track[idx, 1] // cfg.band_px).astype(np.int64)
    order = np.arange(len(idx))
    i, j = np.nonzero((band[:, None] == band) & (order[:, None] < order))  # pairs in one band
    si, sj = pieces.slope[idx[i]], pieces.slope[idx[j]]
    sin = np.abs(np.sin(np.arctan(si) - np.arctan(sj)))
    keep = sin > np.sin(np.radians(cfg.vp_min_angle_deg))
    i, j, si, sj, sin = i[keep], j[keep], si[keep], sj[keep], sin[keep]
    ci, cj = pieces.track[idx[i]], pieces.track[idx[j]]
    y = (cj[:, 0] - ci[:, 0] + si * ci[:, 1] - sj * cj[:, 1]) / (si - sj)
    x = ci[:, 0] + si * (y - ci[:, 1])
    ok = (y >= 0.05 * h) & (y < np.minimum(ci[:, 1], cj[:, 1])) & (x >= -w) & (x <= 2 * w)
    if not np.count_nonzero(ok):
        return None
    weight = (np.minimum(pieces.runs[idx[i]], pieces.runs[idx[j]]) * sin)[ok]
    return _weighted_median(x[ok], weight), _weighted_median(y[ok], weight)


def default_vanishing_point(
    size: tuple[int, int], cfg: MaskConfig | None = None
) -> tuple[float, float]:
    """The vanishing point assumed when a mask shows none (`MaskConfig.default_vp`)."""
    cfg = cfg or MaskConfig()
    return size[0] * cfg.default_vp[0], size[1] * cfg.default_vp[1]


def nominal_camera(size: tuple[int, int], vp: tuple[float, float], cfg: MaskConfig) -> Camera:
    """A level pinhole camera with its principal point at the vanishing point `vp`, its focal
    length putting the bottom row `cfg.near_m` ahead of a camera `cfg.height_m` up."""
    w, h = size
    f = cfg.near_m * max(h - 1 - vp[1], 1.0) / cfg.height_m
    return Camera(w, h, f, f, vp[0], vp[1], height_m=cfg.height_m, pitch_deg=0.0)


def camera_vanishing_point(cam: Camera) -> tuple[float, float]:
    """Where lines straight ahead meet in the image of a known camera."""
    uv, _ = cam.project(np.array([[1e6, 0.0, 0.0]]))
    return float(uv[0, 0]), float(uv[0, 1])


@functools.lru_cache(maxsize=8)
def ground_plane(cam: Camera) -> GroundPlane:
    """The ground plane of `cam`, kept for the next frames of the same camera (a node's)."""
    return GroundPlane(cam)


class GroundPlane:
    """Ground (x, y) <-> pixel (u, v) for one camera through its ground homography: one 3x3
    matrix each way, so per-frame work is a matrix product (Camera recomputes its rotation)."""

    def __init__(self, cam: Camera) -> None:
        self.to_pixel = cam.ground_homography()
        self.to_ground = np.linalg.inv(self.to_pixel)

    def pixels(self, ground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) ground points -> (N, 2) pixels and depth along the optical axis (> 0: ahead)."""
        p = ground @ self.to_pixel[:, :2].T + self.to_pixel[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return p[:, :2] / p[:, 2:], p[:, 2]

    def points(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixels -> (N, 2) ground points and whether the pixel sees the ground."""
        q = uv @ self.to_ground[:, :2].T + self.to_ground[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return q[:, :2] / q[:, 2:], q[:, 2] > 0  # 1 / q[2] is the depth


def line_components(
    blobs: Shapes, plane: GroundPlane, horizon: float, cfg: MaskConfig | None = None
) -> np.ndarray:
    """Boolean per component label: False for components that are not lane lines.

    Dropped: specks (< min_area_px), and single strokes long enough to have a shape
    (`shape_px`) that are round (large and not elongated) or lie across the road on the ground
    (heading more than `across_deg` off straight ahead: stop lines, crossings). That test is
    made on the ground because far stretches of a lane line on a bend lie nearly flat in the
    image too, and only `across_min_rows` below the horizon, where rows are fine enough.
    """
    cfg = cfg or MaskConfig()
    keep = blobs.area >= cfg.min_area_px
    judged = blobs.single_stroke & (blobs.length >= cfg.shape_px)
    elongated = blobs.elongation >= cfg.min_elongation
    keep &= ~(judged & (blobs.area >= cfg.round_px) & ~elongated)
    half = blobs.axis * (blobs.length / 2)[:, None]
    ends, ok = plane.points(np.concatenate([blobs.centre - half, blobs.centre + half]))
    n = len(half)
    d = np.abs(ends[n:] - ends[:n])
    across = np.degrees(np.arctan2(d[:, 1], d[:, 0])) > cfg.across_deg
    across &= ok[:n] & ok[n:] & (blobs.centre[:, 1] > horizon + cfg.across_min_rows)
    keep &= ~(judged & elongated & across)
    keep[0] = False
    return keep
