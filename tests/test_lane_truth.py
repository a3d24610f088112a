"""The simulator's check of the lane step: truth lines from its own geometry, scored with
CULane's F1 against the instances found in the exact masks (studies/lane_sim_check.py)."""

from __future__ import annotations

import dataclasses

import numpy as np

from lane_seg.lanes.extract import LaneConfig
from lane_seg.sim.world.collect import draw_frame, split_for
from lane_seg.sim.world.lane_truth import check, truth_lines, val_indices
from lane_seg.sim.world.scene import SimConfig


def test_val_indices_are_the_collectors_val_split():
    idx = val_indices(0, 200)
    assert idx and all(split_for(0, i, 0.1, 0.0) == "val" for i in idx)
    assert len(idx) == sum(split_for(0, i, 0.1, 0.0) == "val" for i in range(200))


def test_truth_lines_are_the_visible_painted_boundaries_down_to_the_bottom():
    sim = SimConfig()
    frame = draw_frame(0, val_indices(0, 200)[0], sim)
    lines = truth_lines(frame, sim)
    h, w = frame.mask.shape
    assert 1 <= len(lines) <= len(frame.scene.boundaries)
    for uv in lines:
        u, v = uv[np.argmax(uv[:, 1])]
        assert v >= h - 1 or not 0 <= u <= w - 1  # from the bottom of the view (or its side) up
        # ... to its farthest visible paint: the mask has paint at the line's top end.
        top = uv[np.argmin(uv[:, 1])]
        y0, x0 = int(round(top[1])), int(round(np.clip(top[0], 0, w - 1)))
        assert frame.mask[max(0, y0 - 3) : y0 + 4, max(0, x0 - 6) : x0 + 7].any()


def test_the_exact_masks_give_the_simulators_lines():
    idx = val_indices(0, 400)[:8]
    result = check(0, idx)
    for run in ("camera_known", "camera_unknown"):
        assert result[run]["frames"] == 8 and result[run]["f1"] > 0.9
    # Lines are labelled down to the bottom of the view: without drawing them down, fewer match.
    short = check(0, idx, lanes=dataclasses.replace(LaneConfig(), extend_gap_m=0.0))
    assert short["camera_known"]["tp"] < result["camera_known"]["tp"]
