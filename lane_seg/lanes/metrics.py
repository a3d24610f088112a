"""The lane benchmarks' own metrics: TuSimple accuracy/FP/FN and CULane precision/recall/F1.

Both follow the official evaluation code step by step (TuSimple's `evaluate/lane.py`,
`LaneEval.bench` and `bench_one_submit`; CULane's `evaluate`, `Counter::count_im_pair` and
`LaneCompare::get_lane_similarity`), so a figure here means what it means in a paper. Each
function's docstring states the definition, quirks included. Pure numpy + OpenCV.

Frames of another size than the benchmark's are brought to the benchmark's frame first, the
way CULane's `LaneCompare::resize_lane` does: every coordinate is scaled by the ratio of the
two sizes, x by width and y by height (the two ratios may differ). The pixel thresholds
(TuSimple's 20 px, CULane's 30 px line width) then apply in the benchmark's pixels, so a
prediction that is off by the same share of the frame scores the same at any resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# TuSimple: 1280x720 frames (TUSIMPLE_SIZE), lanes as one x per row of `h_samples`, NO_POINT
# (-2) where a lane has no point. The importers read the benchmarks' files with these too.
TUSIMPLE_SIZE = (1280, 720)
NO_POINT = -2
TUSIMPLE_PIXEL_THRESH = 20.0
TUSIMPLE_PT_THRESH = 0.85
TUSIMPLE_H_SAMPLES = tuple(range(160, 720, 10))  # the test set's 56 rows

# CULane: lanes drawn 30 px wide on the 1640x590 canvas (CULANE_SIZE), matched at IoU > 0.5.
CULANE_SIZE = (1640, 590)
CULANE_LANE_WIDTH = 30
CULANE_IOU_THRESHOLD = 0.5
CULANE_SPLINE_TIMES = 50  # spline points per label segment before drawing


# --------------------------------------------------------------------------- TuSimple


@dataclass(frozen=True)
class TuSimpleFrame:
    """One frame's TuSimple scores (the three numbers `LaneEval.bench` returns) and detail."""

    accuracy: float
    fp: float  # a rate: unmatched predictions / predictions
    fn: float  # a rate: missed labels / min(labels, 4)
    line_accuracies: tuple[float, ...]  # per label lane: its best point accuracy
    matched: int
    labels: int
    predictions: int


def _to_frame_x(lanes: Sequence[Sequence[float]], scale: float) -> list[np.ndarray]:
    out = []
    for lane in lanes:
        xs = np.asarray(lane, dtype=np.float64)
        out.append(np.where(xs >= 0, xs * scale, NO_POINT))
    return out


def tusimple_angle(xs: np.ndarray, ys: np.ndarray) -> float:
    """`LaneEval.get_angle`: arctan of the slope dx/dy of a least-squares line x(y) through the
    lane's valid points (x >= 0); 0 with fewer than two points."""
    valid = xs >= 0
    x, y = xs[valid], ys[valid]
    if len(x) <= 1:
        return 0.0
    dy = y - y.mean()
    var = float(np.dot(dy, dy))
    return math.atan(float(np.dot(dy, x - x.mean())) / var) if var > 0 else 0.0


def tusimple_line_accuracy(pred: np.ndarray, gt: np.ndarray, thresh: float) -> float:
    """`LaneEval.line_accuracy`: the share of ALL h_samples rows where |x_pred - x_gt| < thresh.

    Missing points (x < 0) become -100 on both sides first, so a row where neither lane has a
    point counts as correct, and a row where only one has a point counts as wrong.
    """
    p = np.where(pred >= 0, pred, -100.0)
    g = np.where(gt >= 0, gt, -100.0)
    return float(np.sum(np.abs(p - g) < thresh)) / len(g)


def tusimple_frame(
    pred: Sequence[Sequence[float]],
    gt: Sequence[Sequence[float]],
    h_samples: Sequence[float],
    size: tuple[int, int] = TUSIMPLE_SIZE,
    run_time_ms: float | None = None,
) -> TuSimpleFrame:
    """TuSimple's per-frame scores, as `LaneEval.bench` computes them.

    pred, gt: lanes as one x per row of `h_samples` (x < 0, normally -2: no point), in pixels of
    a frame of `size` (width, height); scaled to 1280x720 first when `size` differs.

    - Each label lane gets a threshold of 20 px / cos(angle), the angle of a least-squares line
      x(y) through its points (steep lanes in the image get a wider threshold).
    - Its accuracy is the best `tusimple_line_accuracy` over all predictions; below 0.85 the
      lane is a false negative, else it is matched. A prediction may serve several labels (no
      one-to-one matching), and FP = predictions - matched labels, as in the official code.
    - With more than 4 label lanes, the worst lane's accuracy is dropped and one FN forgiven.
    - accuracy = sum of lane accuracies / max(min(labels, 4), 1);
      FP rate = FP / predictions (0 without predictions); FN rate = FN / max(min(labels, 4), 1).
    - More than labels + 2 predictions, or a run time over 200 ms, scores (0, 0, 1).
    A lane whose length differs from `h_samples` raises ValueError (the benchmark rejects it).
    """
    if any(len(p) != len(h_samples) for p in list(pred) + list(gt)):
        raise ValueError("every lane needs one x per h_samples row")
    sx = TUSIMPLE_SIZE[0] / size[0]
    ys = np.asarray(h_samples, dtype=np.float64) * (TUSIMPLE_SIZE[1] / size[1])
    preds, gts = _to_frame_x(pred, sx), _to_frame_x(gt, sx)
    n_gt, n_pred = len(gts), len(preds)
    if (run_time_ms is not None and run_time_ms > 200) or n_gt + 2 < n_pred:
        return TuSimpleFrame(0.0, 0.0, 1.0, (), 0, n_gt, n_pred)
    line_accs: list[float] = []
    fn, matched = 0, 0
    for g in gts:
        thresh = TUSIMPLE_PIXEL_THRESH / math.cos(tusimple_angle(g, ys))
        best = max((tusimple_line_accuracy(p, g, thresh) for p in preds), default=0.0)
        if best < TUSIMPLE_PT_THRESH:
            fn += 1
        else:
            matched += 1
        line_accs.append(best)
    fp = n_pred - matched
    if n_gt > 4 and fn > 0:
        fn -= 1
    total = sum(line_accs) - (min(line_accs) if n_gt > 4 else 0.0)
    denom = max(min(4.0, n_gt), 1.0)
    return TuSimpleFrame(
        accuracy=total / denom,
        fp=fp / n_pred if n_pred > 0 else 0.0,
        fn=fn / denom,
        line_accuracies=tuple(line_accs),
        matched=matched,
        labels=n_gt,
        predictions=n_pred,
    )


@dataclass(frozen=True)
class TuSimpleScore:
    """Dataset scores as `bench_one_submit` reports them: per-frame values averaged over frames."""

    accuracy: float
    fp: float
    fn: float
    frames: int

    def to_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "fp": self.fp, "fn": self.fn, "frames": self.frames}


def tusimple_dataset(frames: Iterable[TuSimpleFrame]) -> TuSimpleScore:
    """Accuracy, FP and FN: the sums of the per-frame values divided by the number of frames
    (NaN for no frames). Score every labelled frame: the benchmark refuses a submission that
    leaves one out, so a frame without lanes found is scored with an empty prediction."""
    frames = list(frames)
    n = len(frames)
    if n == 0:
        return TuSimpleScore(math.nan, math.nan, math.nan, 0)
    return TuSimpleScore(
        sum(f.accuracy for f in frames) / n,
        sum(f.fp for f in frames) / n,
        sum(f.fn for f in frames) / n,
        n,
    )


# --------------------------------------------------------------------------- CULane


def culane_spline(lane: np.ndarray, times: int = CULANE_SPLINE_TIMES) -> np.ndarray:
    """`Spline::splineInterpTimes`: a natural cubic spline through the points, parametrised by
    chord length, `times` points per segment plus the last point. Two-point lanes are returned
    as they are (the evaluator draws them as one straight segment). Consecutive duplicate
    points are dropped first (the official code divides by their zero distance)."""
    pts = np.asarray(lane, dtype=np.float64).reshape(-1, 2)
    if len(pts) > 1:
        keep = np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]
        pts = pts[keep]
    n = len(pts)
    if n <= 2:
        return pts
    h = np.hypot(*np.diff(pts, axis=0).T)  # (n-1,)
    slope = np.diff(pts, axis=0) / h[:, None]
    # Tridiagonal system for the second derivatives M[1..n-2]; natural ends M[0] = M[n-1] = 0.
    a = np.zeros((n - 2, n - 2))
    idx = np.arange(n - 2)
    a[idx, idx] = 2 * (h[:-1] + h[1:])
    a[idx[1:], idx[:-1]] = h[1:-1]
    a[idx[:-1], idx[1:]] = h[1:-1]
    m = np.zeros((n, 2))
    m[1:-1] = np.linalg.solve(a, 6 * np.diff(slope, axis=0))
    t = (np.arange(times) / times)[None, :] * h[:, None]  # (n-1, times)
    b = slope - (2 * h[:, None] * m[:-1] + h[:, None] * m[1:]) / 6
    c = m[:-1] / 2
    d = (m[1:] - m[:-1]) / (6 * h[:, None])
    out = (
        pts[:-1, None, :]
        + b[:, None, :] * t[..., None]
        + c[:, None, :] * t[..., None] ** 2
        + d[:, None, :] * t[..., None] ** 3
    )
    return np.vstack([out.reshape(-1, 2), pts[-1:]])


def culane_lane_mask(
    lane: np.ndarray, size: tuple[int, int] = CULANE_SIZE, width: int = CULANE_LANE_WIDTH
) -> np.ndarray:
    """The lane as `get_lane_similarity` draws it: its spline drawn `width` px wide (round caps,
    8-connected, vertices rounded to whole pixels) on a canvas of `size` (width, height)."""
    canvas = np.zeros((size[1], size[0]), np.uint8)
    pts = culane_spline(lane)
    if len(pts) >= 2:
        ipts = np.rint(pts).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [ipts], False, 1, int(width), cv2.LINE_8)
    return canvas


def culane_ious(
    pred: Sequence[np.ndarray],
    gt: Sequence[np.ndarray],
    size: tuple[int, int] = CULANE_SIZE,
    width: int = CULANE_LANE_WIDTH,
) -> np.ndarray:
    """(labels, predictions) matrix of pixel IoUs between the drawn lanes; lanes with fewer
    than two points have IoU 0 with everything, as in the official code."""

    def drawn(lanes: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [culane_lane_mask(p, size, width) if len(p) >= 2 else None for p in lanes]

    g_masks, p_masks = drawn(gt), drawn(pred)
    g_area = [int(cv2.countNonZero(m)) if m is not None else 0 for m in g_masks]
    p_area = [int(cv2.countNonZero(m)) if m is not None else 0 for m in p_masks]
    ious = np.zeros((len(gt), len(pred)))
    for i, gm in enumerate(g_masks):
        for j, pm in enumerate(p_masks):
            if gm is None or pm is None:
                continue
            inter = int(cv2.countNonZero(cv2.bitwise_and(gm, pm)))
            union = g_area[i] + p_area[j] - inter
            ious[i, j] = inter / union if union > 0 else 0.0
    return ious


def max_weight_matching(weights: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of a one-to-one assignment with the largest total weight, every row
    or every column (whichever are fewer) assigned: the Hungarian algorithm, as the CULane
    evaluator's Kuhn-Munkres matcher (`pipartiteGraph::match`) computes it, exactly."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return []
    transposed = w.shape[0] > w.shape[1]
    cost = -(w.T if transposed else w)  # n rows <= m columns; minimise cost
    n, m = cost.shape
    # Shortest augmenting paths with potentials (Jonker-Volgenant form of the Hungarian method).
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # column -> row (1-based), 0 = free
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    return sorted((c, r) if transposed else (r, c) for r, c in pairs)


@dataclass(frozen=True)
class CULaneFrame:
    """One frame's CULane counts and the matches behind them."""

    tp: int
    fp: int
    fn: int
    matches: tuple[tuple[int, int, float], ...]  # (label, prediction, IoU) of the true positives
    ious: np.ndarray  # (labels, predictions)


def _to_canvas(lanes: Sequence[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    scale = np.array([CULANE_SIZE[0] / size[0], CULANE_SIZE[1] / size[1]])
    return [np.asarray(p, dtype=np.float64).reshape(-1, 2) * scale for p in lanes]


def culane_frame(
    pred: Sequence[np.ndarray],
    gt: Sequence[np.ndarray],
    size: tuple[int, int] = CULANE_SIZE,
    iou_threshold: float = CULANE_IOU_THRESHOLD,
    lane_width: int = CULANE_LANE_WIDTH,
) -> CULaneFrame:
    """CULane's per-frame counts, as `Counter::count_im_pair` computes them.

    pred, gt: lanes as (N, 2) arrays of x, y points in a frame of `size` (width, height),
    scaled to 1640x590 first when `size` differs (`LaneCompare::resize_lane`).

    - Every lane is interpolated by `culane_spline` and drawn `lane_width` (30) px wide on a
      1640x590 canvas; the similarity of two lanes is the IoU of their drawn pixels.
    - Labels and predictions are matched one to one by the assignment of largest total IoU
      (Hungarian / Kuhn-Munkres, not greedy); a matched pair with IoU > threshold (strictly
      greater, as `count_im_pair` compares) is a true positive.
    - FP = predictions - TP, FN = labels - TP; a frame without labels has every prediction a
      false positive, one without predictions every label a false negative.
    """
    g, p = _to_canvas(gt, size), _to_canvas(pred, size)
    if not g or not p:
        return CULaneFrame(0, len(p), len(g), (), np.zeros((len(g), len(p))))
    ious = culane_ious(p, g, CULANE_SIZE, lane_width)
    matches = tuple(
        (i, j, float(ious[i, j]))
        for i, j in max_weight_matching(ious)
        if ious[i, j] > iou_threshold
    )
    tp = len(matches)
    return CULaneFrame(tp, len(p) - tp, len(g) - tp, matches, ious)


@dataclass(frozen=True)
class CULaneScore:
    """Dataset counts summed over frames, and the scores `evaluate` prints from them."""

    tp: int
    fp: int
    fn: int
    frames: int

    @property
    def precision(self) -> float:
        """tp / (tp + fp); NaN without any prediction (the official tool prints -1)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        """tp / (tp + fn); NaN without any label (the official tool prints -1)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def f1(self) -> float:
        """2PR / (P + R), written as 2tp / (2tp + fp + fn): the same value wherever the
        official formula is defined, 0 when nothing matched, NaN with no lanes at all."""
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else math.nan

    def to_dict(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "frames": self.frames,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def culane_dataset(frames: Iterable[CULaneFrame]) -> CULaneScore:
    """TP, FP and FN summed over every frame (a micro average: each lane weighs the same),
    then precision, recall and F1 from the sums, as `evaluate` does."""
    tp = fp = fn = n = 0
    for f in frames:
        tp, fp, fn, n = tp + f.tp, fp + f.fp, fn + f.fn, n + 1
    return CULaneScore(tp, fp, fn, n)
