"""Lane lines from ground points, fitted for all lines at once.

The points are the centres of a mask's row runs cast onto the ground plane (`lane_seg.lanes`).
Seeds are histogram peaks of lateral offset (`histogram_peaks`: bins, separation, support),
taken in the near band and, for outer lines that enter the view only further out, in the band
beyond. Then, in a few rounds, every point joins its nearest line if within a window
(`window_m` plus a few pixels' footprint, wider beyond a line's points as an extrapolated fit
drifts on a bend), each line keeps its longest stretch without a gap over `max_gap_m` (it
carries over dash gaps, not over to a stray blob far beyond), and all lines are refitted at once
as quadratics y(x) by least squares with a pull of the curvature towards zero
(`curvature_prior_points`). Lines that converge onto one marking are merged, weak ones dropped.
The result is `LineFit`s (`lane_seg.lanes.geometry`), which the tracker filters over time.

Every line is fitted in one batch of array operations, whatever their number: per-line RANSAC
and sliding windows, the way this repository once fitted the ego lines, took several times the
lane step's budget on real frames with five or more candidate lines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lane_seg.lanes.geometry import LineFit, poly

_X_SCALE = 20.0  # x is fitted in units of 20 m (conditioning: c2 * 400 is metres at 20 m)


@dataclass(frozen=True)
class GroupingConfig:
    """Tuning of the grouping: metres on the ground, pixels of the working size."""

    x_range_m: tuple[float, float] = (1.0, 120.0)  # the ground band used, ahead of the origin
    y_max_m: float = 12.0  # |lateral| beyond this is ignored
    seed_band_m: float = 16.0  # length of the near band the seeds come from
    bin_m: float = 0.15  # histogram bin of the seeds
    min_peak_points: int = 6  # points are one per row, not per pixel: a few make a seed
    peak_separation_m: float = 1.2  # peaks closer than this are one marking (double lines)
    window_m: float = 0.4  # half width of the join window on the ground ...
    window_px: float = 3.0  # ... plus this many pixels' footprint
    max_gap_m: float = 16.0  # a line carries on over gaps up to this long (dashes, occluders)
    min_points: int = 12  # inliers a line needs
    curvature_prior_points: float = 0.05  # pull of the curvature towards 0, as this many points
    inlier_m: float = 0.15  # inliers: this close to their line ...
    inlier_px: float = 1.5  # ... plus this many pixels' footprint
    bend_slack: float = 1 / 200  # window widening per square metre beyond a line's points
    rounds: int = 4
    full_support: int = 40  # rows of support for full quality
    full_span_m: float = 12.0  # ... and extent on the ground
    max_heading_deg: float = 25.0  # lines heading further off straight ahead where they start
    # are not lane lines


def _design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, 8) per point: 1, x, x^2 (the design), x^3, x^4, and y, xy, x^2 y (the sums of the
    normal equations), x in units of _X_SCALE."""
    t = np.empty((len(x), 8))
    t[:, 0] = 1.0
    xs, x2 = np.divide(x, _X_SCALE, out=t[:, 1]), t[:, 2]
    np.multiply(xs, xs, out=x2)
    np.multiply(x2, xs, out=t[:, 3])
    np.multiply(x2, x2, out=t[:, 4])
    t[:, 5] = y
    np.multiply(xs, y, out=t[:, 6])
    np.multiply(x2, y, out=t[:, 7])
    return t


def _fit_all(terms: np.ndarray, owner: np.ndarray, coeffs: np.ndarray, prior: float) -> np.ndarray:
    """Least-squares quadratics for every line at once (`terms` from `_design`); points with
    owner -1 are nobody's. The curvature term is pulled to 0 with the weight of `prior`
    points; lines with fewer than 3 points, or all at one or two distances, keep theirs."""
    k = len(coeffs)
    sums = (owner == np.arange(k)[:, None]).astype(np.float64) @ terms  # (K, 8)
    a = sums.take(_MOMENTS, axis=1).reshape(k, 3, 3)
    a[:, 2, 2] += prior
    # Points stacked at one or two distances ahead fix no quadratic.
    ok = _well_conditioned(a, sums[:, 0] >= 3)
    solvable = np.count_nonzero(ok)
    if solvable == k:  # most rounds: every line
        return np.linalg.solve(a, sums[:, 5:8, None])[..., 0]
    out = coeffs.copy()
    if solvable:
        out[ok] = np.linalg.solve(a[ok], sums[ok, 5:8, None])[..., 0]
    return out


_MOMENTS = np.array([0, 1, 2, 1, 2, 3, 2, 3, 4])  # (K, 8) sums -> (K, 3, 3) normal matrices


def _well_conditioned(a: np.ndarray, ok: np.ndarray, limit: float = 1e12) -> np.ndarray:
    """`ok` and cond(a) < limit, for symmetric positive semi-definite 3x3 matrices (normal
    equations). Their condition number is at most trace^3 / det (the largest eigenvalue is at
    most the trace, the smallest at least det / largest^2), which settles nearly all of them
    with one determinant; the rest get the singular values (`np.linalg.cond`), ten times the
    cost."""
    tr = a.trace(axis1=1, axis2=2)
    sure = ok & (tr * tr * tr < 0.1 * limit * np.linalg.det(a))
    unsure = ok > sure
    if np.count_nonzero(unsure):
        sure[unsure] = np.linalg.cond(a[unsure]) < limit
    return sure


_EIGHT_STEPS = np.linspace(0.0, 1.0, 8)


def _merge_duplicates(
    coeffs: np.ndarray, reach: np.ndarray, support: np.ndarray, separation: float
) -> np.ndarray:
    """Indices of lines to keep: of two lines closer than `separation` along their common
    reach (median gap over 8 points), the one with less support goes. Only pairs whose reaches
    overlap are compared, each once."""
    k = len(coeffs)
    lo = np.maximum(reach[:, None, 0], reach[None, :, 0])  # (K, K) common reach
    hi = np.minimum(reach[:, None, 1], reach[None, :, 1])
    line = np.arange(k)
    i, j = ((hi > lo) & (line[:, None] < line)).nonzero()  # lines without points reach nothing
    if len(i) == 0:
        return line
    lo, hi = lo[i, j], hi[i, j]
    xs = (lo[:, None] + (hi - lo)[:, None] * _EIGHT_STEPS) / _X_SCALE  # (P, 8)
    diff = coeffs[i] - coeffs[j]
    gap = np.abs(diff[:, :1] + diff[:, 1:2] * xs + diff[:, 2:] * xs * xs)
    gap.sort(axis=1)
    near = (gap[:, 3] + gap[:, 4]) / 2 < separation  # the median
    if not np.count_nonzero(near):
        return line
    close = np.zeros((k, k), bool)
    close[i[near], j[near]] = close[j[near], i[near]] = True
    kept: list[int] = []
    for m in np.argsort(-support, kind="stable"):
        if not close[m, kept].any():
            kept.append(int(m))
    return np.sort(np.array(kept, np.int64))


def _join_continuations(
    owned: np.ndarray,
    coeffs: np.ndarray,
    reach: np.ndarray,
    counts: np.ndarray,
    cfg: GroupingConfig,
) -> np.ndarray:
    """`owned` with the points of each line that continues a stronger one handed to it: a line
    that starts at most `max_gap_m` beyond where the other ends (or overlaps it by under a
    metre) and meets its fit there within half `peak_separation_m`. On a bend, the far stretch
    of a line seeds a line of its own in the band beyond; joined, the two are fitted as one."""
    k = len(coeffs)
    if k < 2:
        return owned
    near_end, far_start = reach[:, None, 1], reach[None, :, 0]  # line i ends, line j starts
    ahead = far_start - near_end
    joins = (ahead <= cfg.max_gap_m) & (ahead >= -1.0)
    joins.flat[:: k + 1] = False  # the diagonal
    if not np.count_nonzero(joins):  # most rounds: no line starts where another ends
        return owned
    with np.errstate(invalid="ignore"):  # lines without points have no reach
        xm = (near_end + far_start) / 2 / _X_SCALE
        diff = coeffs[:, None, :] - coeffs[None, :, :]
        gap = np.abs(diff[..., 0] + diff[..., 1] * xm + diff[..., 2] * xm * xm)
        joins &= gap < cfg.peak_separation_m / 2
    into = np.arange(k)
    for i, j in zip(*np.nonzero(joins), strict=True):  # the weaker joins the stronger
        weak, strong = (j, i) if counts[i] >= counts[j] else (i, j)
        into[into == weak] = into[strong]
    return np.where(owned >= 0, into[np.maximum(owned, 0)], -1)


def histogram_peaks(bins: np.ndarray, cfg: GroupingConfig) -> list[float]:
    """Lateral positions of histogram peaks, strongest first, at least `peak_separation_m`
    apart, at most eight. `bins`: each point's bin (`_bin_index`; -1 outside the bins)."""
    _, centres = _bins(cfg.y_max_m, cfg.bin_m)
    hist = np.bincount(bins[bins >= 0], minlength=len(centres))
    hist = np.convolve(hist, _SMOOTHING, mode="same") / 3.0
    order = np.argsort(hist)[::-1]
    # Strongest first; each peak taken clears the bins within the separation of it.
    left = centres[order[: np.count_nonzero(hist >= cfg.min_peak_points)]]
    peaks: list[float] = []
    while len(left) and len(peaks) < 8:
        peaks.append(float(left[0]))
        left = left[np.abs(left - left[0]) >= cfg.peak_separation_m]
    return peaks


_SMOOTHING = np.array([1, 2, 3, 2, 1])


def _bin_index(r: np.ndarray, cfg: GroupingConfig) -> np.ndarray:
    """Each value's bin of the seed histogram, -1 outside them: np.histogram's binning (edges
    searched, the last bin closed), without its overhead."""
    edges, _ = _bins(cfg.y_max_m, cfg.bin_m)
    idx = np.searchsorted(edges, r, side="right") - 1
    idx[r == edges[-1]] = len(edges) - 2
    idx[idx >= len(edges) - 1] = -1
    return idx


@functools.lru_cache(maxsize=4)
def _bins(y_max: float, bin_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Edges and centres of the seed histogram's bins (shared: not to be written to)."""
    edges = np.arange(-y_max, y_max + bin_m, bin_m)
    return edges, (edges[:-1] + edges[1:]) / 2


def _seeds(x: np.ndarray, y: np.ndarray, x0: float, g: GroupingConfig) -> np.ndarray:
    """(K, 2) lateral offset and starting distance of each line to look for: histogram
    peaks in the near band, then in the band beyond it (outer lines often enter the
    view only there), unless close to a seed already taken."""
    seeds: list[tuple[float, float]] = []
    bins = _bin_index(y, g)
    lo = x0
    for hi in (x0 + g.seed_band_m, x0 + 2.5 * g.seed_band_m):
        for p in histogram_peaks(bins[(x >= lo) & (x <= hi)], g):
            if all(abs(p - q) >= g.peak_separation_m for q, _ in seeds):
                seeds.append((p, lo))
        lo = hi
    return np.array(seeds).reshape(-1, 2)


def _nearest(terms: np.ndarray, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest line and its lateral distance to it."""
    dist = np.abs(terms[:, 5] - coeffs @ terms[:, :3].T)  # (K, N)
    return dist.argmin(axis=0), dist.min(axis=0)


def _main_stretch(
    x: np.ndarray, owner: np.ndarray, ok: np.ndarray, max_gap: float, by_x: np.ndarray
) -> np.ndarray:
    """`ok` narrowed to each line's main stretch: its candidate points cut wherever two
    consecutive ones (along x) are more than `max_gap` apart, the stretch with most points
    kept. A line carries on over dash gaps, but not over to a stray blob far beyond.
    `by_x`: the points in the order of x (a stable sort), so only lines need sorting here."""
    order = by_x[ok[by_x]]
    if len(order) == 0:
        return ok
    order = order[owner[order].astype(np.int16).argsort(kind="stable")]  # by line, then x
    xs, os = x[order], owner[order]
    start = np.empty(len(order), bool)  # a stretch starts at a new line or after a gap
    start[0] = True
    np.not_equal(os[1:], os[:-1], out=start[1:])
    gap = xs[1:] - xs[:-1] > max_gap
    if not np.count_nonzero(gap > start[1:]):  # most rounds: every line is one stretch
        return ok
    start[1:] |= gap
    stretch = start.cumsum() - 1
    size = np.bincount(stretch)
    line_of = os[start]  # the line of each stretch
    by_size = np.lexsort((size, line_of))  # per line, its largest stretch comes last
    best = np.zeros(len(size), bool)
    best[by_size[np.append(line_of[by_size][1:] != line_of[by_size][:-1], True)]] = True
    out = np.zeros_like(ok)
    out[order[best[stretch]]] = True
    return out


def _extent(x: np.ndarray, owned: np.ndarray, k: int) -> np.ndarray:
    """(k, 2) nearest and farthest x of each line's points (`owned`: each point's line, -1 for
    none); inf, -inf for a line without points."""
    mine = owned == np.arange(k)[:, None]  # (k, N): a few lines, a few hundred points
    out = np.empty((k, 2))
    out[:, 0] = np.where(mine, x, np.inf).min(axis=1, initial=np.inf)
    out[:, 1] = np.where(mine, x, -np.inf).max(axis=1, initial=-np.inf)
    return out


def group_lines(
    pts: np.ndarray, footprint: np.ndarray, cfg: GroupingConfig | None = None
) -> list[LineFit]:
    """Ground points (N, 2) -> lane lines, each a `LineFit`, right to left.

    footprint: lateral metres one pixel covers at each point (its distance / focal length),
    which widens the windows where the image is coarse.
    """
    cfg = cfg or GroupingConfig()
    g = cfg
    if len(pts) < g.min_points:
        return []
    x, y = pts[:, 0], pts[:, 1]
    x0 = float(np.partition(x, len(x) // 50)[len(x) // 50])  # the nearest points but strays
    seeds = _seeds(x, y, x0, g)
    if len(seeds) == 0:
        return []
    terms = _design(x, y)
    by_x = x.argsort(kind="stable")
    coeffs = np.zeros((len(seeds), 3))
    coeffs[:, 0] = seeds[:, 0]
    # Where each line has points; at first its seed's band, where a straight line is a fair
    # guess. Beyond that stretch a point may lie further off, as an extrapolated fit drifts on
    # a bend: the window widens with the square of the distance beyond.
    span = np.column_stack([seeds[:, 1], seeds[:, 1] + g.seed_band_m])
    window = g.window_m + cfg.window_px * footprint
    prior = g.curvature_prior_points
    member = np.zeros(len(x), bool)
    for first in [True] + [False] * (cfg.rounds - 1):
        owner, d_own = _nearest(terms, coeffs)
        beyond = np.maximum(np.maximum(x - span[:, 1][owner], span[:, 0][owner] - x), 0.0)
        if first:
            ok = (d_own < window) & (beyond == 0)
        else:
            ok = d_own < window + cfg.bend_slack * beyond * beyond
        ok = _main_stretch(x, owner, ok, g.max_gap_m, by_x)
        owned = np.where(ok, owner, -1)
        counts = np.bincount(owner[ok], minlength=len(coeffs))
        coeffs = _fit_all(terms, owned, coeffs, prior)
        span = _extent(x, owned, len(coeffs))
        joined = _join_continuations(owned, coeffs, span, counts, cfg)
        if joined is not owned and np.count_nonzero(joined != owned):
            owned = joined
            counts = np.bincount(owned[owned >= 0], minlength=len(coeffs))
            coeffs = _fit_all(terms, owned, coeffs, prior)
            span = _extent(x, owned, len(coeffs))
        # A line may start from one short dash in its band: judge it once it could grow.
        alive = counts >= (3 if first else g.min_points)
        keep = _merge_duplicates(coeffs, span, np.where(alive, counts, -1), g.peak_separation_m)
        keep = keep[alive[keep]]
        settled = np.count_nonzero(ok != member) <= 0.02 * np.count_nonzero(ok)
        settled &= len(keep) == len(coeffs)  # membership (almost) as in the round before
        member = ok
        coeffs, span = coeffs[keep], span[keep]
        if settled or len(coeffs) == 0:
            break
    if len(coeffs) == 0:
        return []
    # Inliers: each point to its nearest line within the tight tolerance, on its main stretch.
    owner, d_own = _nearest(terms, coeffs)
    member = _main_stretch(x, owner, d_own < window, g.max_gap_m, by_x)
    inlier = member & (d_own < g.inlier_m + cfg.inlier_px * footprint)
    owned = np.where(inlier, owner, -1)
    coeffs = _fit_all(terms, owned, coeffs, prior)
    return _line_fits(x, y, owned, np.bincount(owner[member], minlength=len(coeffs)), coeffs, cfg)


def _line_fits(
    x: np.ndarray,
    y: np.ndarray,
    owned: np.ndarray,
    members: np.ndarray,
    coeffs: np.ndarray,
    cfg: GroupingConfig,
) -> list[LineFit]:
    """LineFits (metres, sorted right to left) of the lines with enough inliers (`owned`: each
    point's line, -1 for none) that do not head across the road where they start."""
    k = len(coeffs)
    c = coeffs / np.array([1.0, _X_SCALE, _X_SCALE**2])  # back to metres: c0 + c1 x + c2 x^2
    sel = owned >= 0
    o, xs, ys = owned[sel], x[sel], y[sel]
    n_in = np.bincount(o, minlength=k)
    lo_hi = np.where(n_in[:, None] > 0, _extent(x, owned, k), 0.0)
    resid = ys - (c[o, 0] + c[o, 1] * xs + c[o, 2] * xs * xs)
    rms = np.sqrt(np.bincount(o, resid * resid, k) / np.maximum(n_in, 1))
    span = lo_hi[:, 1] - lo_hi[:, 0]
    share = n_in / np.maximum(members, np.maximum(n_in, 1))
    quality = np.minimum(1.0, n_in / cfg.full_support) * share
    quality *= np.minimum(1.0, span / cfg.full_span_m)
    heading = np.abs(c[:, 1] + 2 * c[:, 2] * lo_hi[:, 0])
    good = (n_in >= cfg.min_points) & (heading <= np.tan(np.radians(cfg.max_heading_deg)))
    pts = np.column_stack([xs, ys])[o.argsort(kind="stable")]
    ends = n_in.cumsum()
    y0 = poly(c.T, 0.0)  # where each crosses x = 0: right to left
    order = sorted(good.nonzero()[0].tolist(), key=lambda i: float(y0[i]))
    return [
        LineFit(c[i], int(n_in[i]), float(span[i]), float(rms[i]), float(quality[i]), p)
        for i in order
        for p in [pts[ends[i] - n_in[i] : ends[i]]]
    ]
