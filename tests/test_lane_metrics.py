"""The benchmarks' lane metrics on hand-made cases whose answer is known: TuSimple accuracy/FP/FN
(angle-adjusted 20 px, the 0.85 rule, the >4-lanes rule) and CULane F1 (30 px lanes, IoU > 0.5,
one-to-one matching where greedy matching is wrong, scaling to 1640x590)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lane_seg.lanes.metrics import (
    CULANE_SIZE,
    NO_POINT,
    CULaneScore,
    culane_dataset,
    culane_frame,
    culane_ious,
    culane_lane_mask,
    culane_spline,
    max_weight_matching,
    tusimple_angle,
    tusimple_dataset,
    tusimple_frame,
)

ROWS = list(range(160, 720, 10))  # TuSimple's 56 h_samples


def vertical(x: float, rows: list[int] = ROWS) -> list[float]:
    return [float(x)] * len(rows)


# --------------------------------------------------------------------------- TuSimple


def test_tusimple_perfect_prediction():
    gt = [vertical(300), vertical(600), vertical(900)]
    f = tusimple_frame(gt, gt, ROWS)
    assert (f.accuracy, f.fp, f.fn) == (1.0, 0.0, 0.0)
    assert f.matched == 3 and f.line_accuracies == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("shift", "correct"), [(19.9, True), (20.0, False), (25.0, False)])
def test_tusimple_pixel_threshold_on_a_vertical_lane(shift, correct):
    """A vertical lane has angle 0: its threshold is exactly 20 px, and the test is strict."""
    f = tusimple_frame([vertical(500 + shift)], [vertical(500)], ROWS)
    assert f.accuracy == (1.0 if correct else 0.0)
    assert (f.fp, f.fn) == ((0.0, 0.0) if correct else (1.0, 1.0))


def test_tusimple_threshold_grows_with_the_lane_angle():
    """x = 100 + y: 45 degrees, threshold 20 / cos(45) = 28.28 px."""
    gt = [100.0 + y for y in ROWS]
    assert tusimple_angle(np.array(gt), np.array(ROWS, float)) == pytest.approx(math.pi / 4)
    inside = tusimple_frame([[x + 28.0 for x in gt]], [gt], ROWS)
    outside = tusimple_frame([[x + 28.6 for x in gt]], [gt], ROWS)
    assert inside.accuracy == 1.0 and outside.accuracy == 0.0


def test_tusimple_085_rule_per_lane():
    """A lane is matched when at least 85% of ALL rows agree; 17/20 matches, 16/20 misses."""
    rows = list(range(20))
    gt = [vertical(400, rows)]
    good = vertical(400, rows)
    good[:3] = [480.0] * 3  # 17 of 20 rows right
    bad = vertical(400, rows)
    bad[:4] = [480.0] * 4  # 16 of 20
    f = tusimple_frame([good], gt, rows)
    assert f.line_accuracies == (0.85,) and f.fn == 0.0 and f.fp == 0.0
    f = tusimple_frame([bad], gt, rows)
    assert f.line_accuracies == (0.8,) and f.fn == 1.0 and f.fp == 1.0
    assert f.accuracy == pytest.approx(0.8)  # accuracy counts the partial lane all the same


def test_tusimple_rows_without_points_count_as_the_benchmark_counts_them():
    """-2 on both sides agrees (-100 vs -100); a point on one side only disagrees."""
    gt = vertical(400)
    gt[:10] = [NO_POINT] * 10
    pred_both_missing = list(gt)
    pred_extra_points = vertical(400)  # points where the label has none
    assert tusimple_frame([pred_both_missing], [gt], ROWS).accuracy == 1.0
    f = tusimple_frame([pred_extra_points], [gt], ROWS)
    assert f.accuracy == pytest.approx(46 / 56)


def test_tusimple_missing_and_extra_lanes():
    gt = [vertical(300), vertical(600), vertical(900)]
    missing = tusimple_frame(gt[:2], gt, ROWS)
    assert missing.fn == pytest.approx(1 / 3) and missing.fp == 0.0
    assert missing.accuracy == pytest.approx(2 / 3)
    extra = tusimple_frame([*gt, vertical(1150)], gt, ROWS)
    assert extra.accuracy == 1.0 and extra.fp == pytest.approx(1 / 4) and extra.fn == 0.0


def test_tusimple_one_prediction_may_serve_two_labels():
    """No one-to-one matching in TuSimple's code: FP = predictions - matched labels."""
    rows = list(range(20))
    gt = [vertical(400, rows), vertical(410, rows)]  # 10 px apart, one prediction between
    f = tusimple_frame([vertical(405, rows)], gt, rows)
    assert f.matched == 2 and f.fn == 0.0 and f.fp == -1.0  # -1 / 1, as the official code gives


def test_tusimple_more_than_four_lanes_and_too_many_predictions():
    gt = [vertical(x) for x in (100, 350, 600, 850, 1100)]
    # Five labels: the worst lane is dropped from accuracy and one FN forgiven.
    f = tusimple_frame(gt[:4], gt, ROWS)
    assert f.accuracy == 1.0 and f.fn == 0.0
    # More than labels + 2 predictions: the frame scores (0, 0, 1).
    preds = [vertical(x) for x in (100, 300, 500, 700, 900, 1100)]
    f = tusimple_frame(preds, gt[:3], ROWS)
    assert (f.accuracy, f.fp, f.fn) == (0.0, 0.0, 1.0)
    assert tusimple_frame(gt, gt, ROWS, run_time_ms=250).accuracy == 0.0


def test_tusimple_empty_frames_and_format_errors():
    assert (tusimple_frame([], [], ROWS).accuracy, tusimple_frame([], [], ROWS).fp) == (0.0, 0.0)
    only_pred = tusimple_frame([vertical(300)], [], ROWS)
    assert (only_pred.fp, only_pred.fn) == (1.0, 0.0)
    no_pred = tusimple_frame([], [vertical(300)], ROWS)
    assert (no_pred.accuracy, no_pred.fn) == (0.0, 1.0)
    with pytest.raises(ValueError, match="h_samples"):
        tusimple_frame([[300.0] * 3], [vertical(300)], ROWS)


def test_tusimple_scales_other_resolutions_to_1280x720():
    """At 640x360 a 10 px miss is TuSimple's 20 px: outside; 9.9 px is inside."""
    rows = [y / 2 for y in ROWS]
    gt = [vertical(250, rows)]
    assert tusimple_frame([vertical(259.9, rows)], gt, rows, size=(640, 360)).accuracy == 1.0
    assert tusimple_frame([vertical(260.0, rows)], gt, rows, size=(640, 360)).accuracy == 0.0


def test_tusimple_dataset_averages_frames():
    gt = [vertical(300), vertical(600)]
    frames = [tusimple_frame(gt, gt, ROWS), tusimple_frame(gt[:1], gt, ROWS)]
    score = tusimple_dataset(frames)
    assert score.frames == 2
    assert (score.accuracy, score.fp, score.fn) == pytest.approx((0.75, 0.0, 0.25))
    assert math.isnan(tusimple_dataset([]).accuracy)


# --------------------------------------------------------------------------- CULane


def vline(x: float, y0: float = 100.0, y1: float = 580.0) -> np.ndarray:
    ys = np.arange(y1, y0 - 1, -10.0)
    return np.column_stack([np.full(len(ys), float(x)), ys])


def test_culane_spline_passes_through_the_points():
    pts = np.array([[100.0, 580], [140, 480], [200, 380], [290, 280]])
    s = culane_spline(pts, 50)
    assert len(s) == 3 * 50 + 1
    np.testing.assert_allclose(s[::50], pts, atol=1e-9)
    np.testing.assert_array_equal(culane_spline(pts[:2]), pts[:2])  # drawn as one segment
    # Collinear points give a straight spline; duplicate points are harmless.
    line = np.array([[0.0, 0], [10, 10], [10, 10], [30, 30]])
    s = culane_spline(line)
    np.testing.assert_allclose(s[:, 0], s[:, 1], atol=1e-9)


def test_culane_lane_is_drawn_30px_wide():
    m = culane_lane_mask(vline(800), CULANE_SIZE, 30)
    assert m.shape == (590, 1640)
    row = np.flatnonzero(m[300])
    assert len(row) in (30, 31) and row.min() >= 785 and row.max() <= 815


def test_culane_perfect_and_empty():
    gt = [vline(400), vline(800), vline(1200)]
    f = culane_frame(gt, gt)
    assert (f.tp, f.fp, f.fn) == (3, 0, 0)
    assert culane_dataset([f]).f1 == 1.0
    empty = culane_frame([], [])
    assert (empty.tp, empty.fp, empty.fn) == (0, 0, 0)
    assert math.isnan(culane_dataset([empty]).f1)
    assert (culane_frame(gt, []).fp, culane_frame([], gt).fn) == (3, 3)


@pytest.mark.parametrize(("shift", "tp"), [(8, 1), (9, 1), (11, 0), (14, 0)])
def test_culane_shifted_lane_inside_and_outside_iou_05(shift, tp):
    """Two 30 px lanes d px apart overlap (30 - d) / (30 + d): IoU 0.5 at d = 10."""
    iou = culane_ious([vline(800 + shift)], [vline(800)])[0, 0]
    assert iou == pytest.approx((30 - shift) / (30 + shift), abs=0.03)
    f = culane_frame([vline(800 + shift)], [vline(800)])
    assert (f.tp, f.fp, f.fn) == (tp, 1 - tp, 1 - tp)


def test_culane_missing_and_extra_lanes():
    gt = [vline(400), vline(800), vline(1200)]
    f = culane_frame([vline(400), vline(800), vline(1500), vline(1600)], gt)
    assert (f.tp, f.fp, f.fn) == (2, 2, 1)
    s = culane_dataset([f, culane_frame(gt, gt)])
    assert (s.tp, s.fp, s.fn, s.frames) == (5, 2, 1, 2)
    assert s.precision == pytest.approx(5 / 7) and s.recall == pytest.approx(5 / 6)
    assert s.f1 == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))


def test_culane_one_to_one_matching_where_greedy_is_wrong():
    """Labels A (x=100), B (x=112); predictions P (x=104), Q (x=92). Greedy takes the best pair
    A-P (IoU 0.77) first and is left with B-Q (0.2): one TP. The evaluator's maximum matching
    takes A-Q and B-P (0.58 each): two TPs."""
    gt = [vline(100), vline(112)]
    pred = [vline(104), vline(92)]
    ious = culane_ious(pred, gt)
    assert ious[0, 0] > max(ious[0, 1], ious[1, 0]) > 0.5 > ious[1, 1]
    greedy_tp, used_p, used_g = 0, set(), set()
    for i, j in sorted(np.ndindex(*ious.shape), key=lambda ij: -ious[ij]):
        if i not in used_g and j not in used_p:
            used_g.add(i), used_p.add(j)
            greedy_tp += ious[i, j] > 0.5
    assert greedy_tp == 1
    f = culane_frame(pred, gt)
    assert (f.tp, f.fp, f.fn) == (2, 0, 0)
    assert sorted((g, p) for g, p, _ in f.matches) == [(0, 1), (1, 0)]


def test_culane_scales_other_resolutions_to_1640x590():
    gt = [vline(400), vline(800)]
    pred = [vline(405), vline(812)]  # 5 px and 12 px off at 1640x590
    full = culane_frame(pred, gt)
    half = culane_frame([p / 2 for p in pred], [g / 2 for g in gt], size=(820, 295))
    np.testing.assert_allclose(half.ious, full.ious, atol=1e-9)
    assert (half.tp, half.fp, half.fn) == (full.tp, full.fp, full.fn) == (1, 1, 1)


def test_culane_lanes_with_fewer_than_two_points_match_nothing():
    f = culane_frame([np.array([[800.0, 300.0]])], [vline(800)])
    assert (f.tp, f.fp, f.fn) == (0, 1, 1)


def test_max_weight_matching_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, m = (int(v) for v in rng.integers(1, 6, size=2))
        w = rng.random((n, m))
        pairs = max_weight_matching(w)
        assert len(pairs) == min(n, m)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == min(n, m)
        t = w if n <= m else w.T  # every assignment of the fewer rows to distinct columns
        best = max(
            sum(t[i, j] for i, j in enumerate(cols))
            for cols in itertools.permutations(range(t.shape[1]), t.shape[0])
        )
        assert sum(w[i, j] for i, j in pairs) == pytest.approx(best)
    assert max_weight_matching(np.zeros((0, 3))) == []


def test_culane_score_undefined_ratios_are_nan():
    s = CULaneScore(tp=0, fp=0, fn=4, frames=1)
    assert math.isnan(s.precision) and s.recall == 0.0 and s.f1 == 0.0
