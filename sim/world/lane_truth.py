"""Lane instances from the simulator's exact masks against its own geometry of the lines.

The check that the lane step (`lane_seg.lanes`), not a model, is what the lane metrics measure:
for every frame of a planar dataset's validation split, regenerated from (seed, index) alone
exactly as `lane-seg collect --backend planar` wrote it (`collect.draw_frame`), the lane
instances found in the frame's exact paint mask are scored with CULane's F1
(`lane_metrics.culane_frame`: 30 px at 1640x590, IoU > 0.5, one-to-one) against the lines the
simulator knows are painted and visible in the frame:

- every marked lane boundary (`line_labels.labelled_boundaries`; unmarked road edges have no
  line), its centre projected through the frame's camera (`line_labels.label_lines`, the "lines"
  label's geometry), continuous through dash gaps and behind vehicles;
- visible: its paint shows in the exact mask within `CORRIDOR_PX` of that centre on at least
  `VISIBLE_ROWS` image rows (a line worn or faded away, hidden in glare, fog or the dark, or
  out of view, is no label), and it ends at its farthest visible paint;
- down to the bottom of the view, as CULane and TuSimple label lines. The extraction draws a
  line down there when its points start within `LaneConfig.extend_gap_m` (16 m: more than the
  simulator's longest dash gap, 12 m) of the bottom of the view; `--extend-gap-m 0` in the
  command shows what that convention is worth.

Predictions are every instance `extract_lanes` returns.

Scored twice: with the frame's own camera (as the node has it), and with none (the nominal
camera at the mask's own vanishing point, as for a video or a benchmark frame).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from lane_seg.lanes.drawing import draw_lines
from lane_seg.lanes.extract import LaneConfig, extract_lanes
from lane_seg.lanes.metrics import CULaneFrame, culane_dataset, culane_frame
from lane_seg.sim.world.collect import draw_frame, split_for
from lane_seg.sim.world.line_labels import label_lines
from lane_seg.sim.world.scene import SimConfig

CORRIDOR_PX = 5.0  # paint this close to a line's centre (in pixels) is the line's
VISIBLE_ROWS = 12  # a line whose paint shows on fewer image rows is not visible


def val_indices(seed: int, frames: int, val_fraction: float = 0.1, test_fraction: float = 0.0):
    """Indices of frames 0..frames-1 that `collect_planar` puts in the validation split."""
    return [i for i in range(frames) if split_for(seed, i, val_fraction, test_fraction) == "val"]


def truth_lines(frame, cfg: SimConfig) -> list[np.ndarray]:
    """The simulator's painted lane lines visible in a frame, in its pixels (module docstring):
    each from the bottom of the view (cut to a margin of half the frame around it; the metric
    draws it clipped) up to its farthest visible paint."""
    h, w = frame.mask.shape
    every = len(frame.scene.boundaries)
    lines = label_lines(
        frame.scene, frame.camera, frame.pose, None, cfg.draw_distance_m, cfg.line_width_px, every
    )
    paint = frame.mask > 0
    out = []
    for uv in lines:
        corridor = draw_lines((h, w), [uv], CORRIDOR_PX) > 0
        rows = np.unique(np.nonzero(paint & corridor)[0])
        if len(rows) < VISIBLE_ROWS:
            continue  # worn away, faded, hidden, or out of view
        near = (np.abs(uv[:, 0] - w / 2) < w) & (uv[:, 1] >= rows[0]) & (uv[:, 1] < 1.5 * h)
        if near.sum() >= 2:
            out.append(uv[near])
    return out


def score_frame(frame, truth: list[np.ndarray], camera_known: bool, cfg: LaneConfig) -> CULaneFrame:
    lanes = extract_lanes(frame.mask, camera=frame.camera if camera_known else None, cfg=cfg)
    h, w = frame.mask.shape
    return culane_frame([lane.points for lane in lanes], truth, (w, h))


def check(
    seed: int, indices: Iterable[int], sim: SimConfig | None = None, lanes: LaneConfig | None = None
) -> dict[str, Any]:
    """CULane counts and F1 over the frames `indices` of seed `seed`, with the camera known
    and unknown; `lanes` tunes the extraction (default LaneConfig())."""
    sim, lanes = sim or SimConfig(), lanes or LaneConfig()
    runs: dict[str, list[CULaneFrame]] = {"camera_known": [], "camera_unknown": []}
    labels = 0
    for index in indices:
        frame = draw_frame(seed, index, sim)
        truth = truth_lines(frame, sim)
        labels += len(truth)
        for run, frames in runs.items():
            frames.append(score_frame(frame, truth, run == "camera_known", lanes))
    return {
        "seed": seed,
        "truth": "every painted boundary visible in the frame (lane_truth)",
        "extend_gap_m": lanes.extend_gap_m,
        "labelled_lines": labels,
        **{run: culane_dataset(frames).to_dict() for run, frames in runs.items()},
    }
