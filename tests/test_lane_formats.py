"""TuSimple json lines and CULane .lines.txt written from lane instances, read back and scored:
a perfect prediction scores accuracy 1.0 / F1 1.0, and so do instances extracted from the
labels' own masks; scaling between the mask's and the frame's resolution."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lane_seg.data.importers.culane import parse_lines as read_culane_lines
from lane_seg.lanes.extract import LaneInstance, extract_lanes
from lane_seg.lanes.formats import (
    culane_lines,
    read_tusimple,
    tusimple_lanes,
    tusimple_record,
)
from lane_seg.lanes.metrics import (
    NO_POINT,
    TUSIMPLE_H_SAMPLES,
    culane_dataset,
    culane_frame,
    tusimple_dataset,
    tusimple_frame,
)

ROWS = np.array(TUSIMPLE_H_SAMPLES, dtype=np.float64)


def label_lanes(size: tuple[int, int], vp: tuple[float, float], bottoms: list[float], top: float):
    """Straight label polylines from the bottom row up to row `top`, toward a vanishing point."""
    w, h = size
    lanes = []
    for bx in bottoms:
        ys = np.arange(h - 1.0, top - 1, -1.0)
        t = (ys - vp[1]) / (h - 1 - vp[1])
        lanes.append(np.column_stack([vp[0] + t * (bx - vp[0]), ys]))
    return lanes


def as_instances(polylines: list[np.ndarray]) -> list[LaneInstance]:
    return [LaneInstance(p[np.argsort(p[:, 1])], 1.0) for p in polylines]


def draw(size: tuple[int, int], polylines: list[np.ndarray], width: int) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    for p in polylines:
        cv2.polylines(mask, [np.rint(p * 16).astype(np.int32)], False, 255, width, cv2.LINE_8, 4)
    return mask


TUSIMPLE = label_lanes((1280, 720), (640, 262), [-200.0, 260.0, 1000.0, 1480.0], top=290)
CULANE = label_lanes((1640, 590), (830, 260), [-300.0, 420.0, 1300.0, 2000.0], top=300)


def test_tusimple_writer_reader_and_metric_agree_on_a_perfect_prediction():
    gt = tusimple_lanes(as_instances(TUSIMPLE), ROWS, 1280)
    assert len(gt) == 4 and all(len(lane) == len(ROWS) for lane in gt)
    assert gt[1][0] == NO_POINT  # row 160 lies above the lanes' top
    record = tusimple_record(as_instances(TUSIMPLE), "clips/a/1.jpg", (1280, 720), run_time_ms=4.0)
    assert set(record) == {"lanes", "h_samples", "raw_file", "run_time"}
    back = read_tusimple(json.dumps(record) + "\n\n")
    assert len(back) == 1 and back[0].raw_file == "clips/a/1.jpg" and back[0].run_time_ms == 4.0
    frame = tusimple_frame(back[0].lanes, gt, back[0].h_samples)
    assert (frame.accuracy, frame.fp, frame.fn) == (1.0, 0.0, 0.0)


def test_tusimple_points_outside_the_frame_are_minus_two():
    lane = LaneInstance(np.array([[-50.0, 300.0], [100.0, 700.0]]), 1.0)
    (xs,) = tusimple_lanes([lane], ROWS, 1280)
    rows_in = ROWS[[x != NO_POINT for x in xs]]
    assert rows_in.min() > 300 and rows_in.max() <= 700  # x < 0 above, no polyline below 700
    assert (
        tusimple_lanes([LaneInstance(np.array([[5.0, 0.0], [6.0, 100.0]]), 1.0)], ROWS, 1280) == []
    )


def test_tusimple_from_the_label_mask_scores_as_the_benchmark():
    """Labels drawn 10 px wide (as LaneNet's masks are), read back into lanes by the extraction,
    written at the model's 512x256 and at the frame's 1280x720: every lane found and placed."""
    gt = tusimple_lanes(as_instances(TUSIMPLE), ROWS, 1280)
    mask = draw((1280, 720), TUSIMPLE, 10)
    full = extract_lanes(mask)
    small = extract_lanes(cv2.resize(mask, (512, 256), interpolation=cv2.INTER_AREA))
    scores = []
    for lanes, size in ((full, (1280, 720)), (small, (512, 256))):
        rec = tusimple_record(lanes, "f.jpg", (1280, 720), size=size)
        (back,) = read_tusimple(json.dumps(rec))
        scores.append(tusimple_frame(back.lanes, gt, back.h_samples))
    for s in scores:
        assert (s.fp, s.fn) == (0.0, 0.0)
        assert s.accuracy >= 0.95  # a row or two short near the horizon at most
    assert tusimple_dataset(scores).accuracy >= 0.95


def test_culane_writer_reader_and_metric_agree():
    text = culane_lines(as_instances(CULANE), (1640, 590))
    lines = text.splitlines()
    assert len(lines) == 4
    first = np.array(lines[1].split(), dtype=float).reshape(-1, 2)
    assert first[0, 1] == 589 and np.all(np.diff(first[:, 1]) == -10)  # bottom up, every 10 rows
    back = read_culane_lines(text)
    assert culane_dataset([culane_frame(back, CULANE)]).f1 == 1.0
    # From the label mask (16 px wide, as CULane's own masks), extracted at 512x256.
    mask = draw((1640, 590), CULANE, 16)
    small = cv2.resize(mask, (512, 256), interpolation=cv2.INTER_AREA)
    text = culane_lines(extract_lanes(small), (1640, 590), size=(512, 256))
    score = culane_dataset([culane_frame(read_culane_lines(text), CULANE)])
    assert score.f1 == 1.0


def test_culane_lanes_too_short_to_draw_are_left_out():
    short = LaneInstance(np.array([[100.0, 580.0], [101.0, 585.0]]), 1.0)
    assert culane_lines([short], (1640, 590)) == ""


def test_reader_errors_name_the_line():
    good = json.dumps({"lanes": [[1, 2]], "h_samples": [10, 20], "raw_file": "a.jpg"})
    with pytest.raises(ValueError, match="line 2"):
        read_tusimple(good + "\n{not json}\n")
    with pytest.raises(ValueError, match="line 1: lane 0"):
        read_tusimple(json.dumps({"lanes": [[1]], "h_samples": [10, 20], "raw_file": "a"}))
    with pytest.raises(ValueError, match="line 1"):
        read_tusimple(json.dumps({"lanes": [], "raw_file": "a"}))
