"""The labelled real sources scored as lane lines, with their benchmark's own metric.

Each source whose labels are lane lines (`real_sources`' "lines" convention) is scored with the
metric of the benchmark it comes from (`lane_seg.lanes.metrics`), against label lanes read from
what the source ships:

| source | metric | label lanes | |
|---|---|---|---|
| culane_driver23, culane_night | CULane precision, recall, F1 | the frame's `.lines.txt` | exact |
| tusimple_lanenet | TuSimple accuracy, FP, FN | read back from LaneNet's binary masks | approx. |
| tvtlane | TuSimple accuracy, FP, FN | read back from tvtLANE's truth masks | approx. |

"Read back from masks" (`importers.tusimple.lanes_from_mask`): one lane per 8-connected blob,
its run centre on each of TuSimple's 56 rows (scaled to the frame's height), so lanes that
touch in the mask become one and the rows where a lane starts and ends are the mask's, not the
annotator's: close to the benchmark's figure, not the figure itself. comma10k labels paint,
each dash on its own: it holds no lane lines and gets no lane metric.

Predictions: the model's lane instances (`runtime.segmenter.lanes_from_logits`, no camera), the
two lines on each side of the ego lane nearest to it (`lanes.nearest_lines`): the lines both
benchmarks label and their detectors output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lane_seg.data.importers.culane import REF_SIZE as CULANE_SIZE
from lane_seg.data.importers.tusimple import lanes_from_mask
from lane_seg.data.real_sources import RealFrame, culane_label_lanes
from lane_seg.lanes.extract import LaneInstance, nearest_lines
from lane_seg.lanes.formats import tusimple_lanes, tusimple_rows
from lane_seg.lanes.metrics import culane_dataset, culane_frame, tusimple_dataset, tusimple_frame

PER_SIDE = 2  # lines kept on each side of the ego lane


def _culane_label(frame: RealFrame, shape: tuple[int, int]) -> list[np.ndarray]:
    """The frame's .lines.txt (CULane's 1640x590 pixels) in the label's pixels; LabelError if
    it is malformed (`real_sources.culane_label_lanes`)."""
    lanes = culane_label_lanes(frame.image.with_suffix(".lines.txt"))
    scale = np.array([shape[1] / CULANE_SIZE[0], shape[0] / CULANE_SIZE[1]])
    return [np.asarray(lane, np.float64).reshape(-1, 2) * scale for lane in lanes]


def _mask_label(frame: RealFrame, shape: tuple[int, int]) -> list[list[int]]:
    label = frame.label()  # 0/255
    return lanes_from_mask(label, tusimple_rows(shape[0]))


@dataclass(frozen=True)
class LaneLabels:
    benchmark: str  # "culane" | "tusimple"
    exact: bool
    labels: str  # what the label lanes are, for the reader
    read: Callable[[RealFrame, tuple[int, int]], list]  # (frame, label shape) -> label lanes


CULANE_TXT = LaneLabels("culane", True, "CULane .lines.txt", _culane_label)
LANE_LABELS = {
    "culane_driver23": CULANE_TXT,
    "culane_night": CULANE_TXT,
    "tusimple_lanenet": LaneLabels(
        "tusimple", False, "lanes read back from LaneNet's binary masks", _mask_label
    ),
    "tvtlane": LaneLabels(
        "tusimple", False, "lanes read back from tvtLANE's truth masks", _mask_label
    ),
}
NO_LINES = "paint labels (each dash on its own): no lane lines to score"


class LaneTally:
    """One source's lane scores, frame by frame."""

    def __init__(self, source: str) -> None:
        self.spec = LANE_LABELS.get(source)
        self.frames: list = []

    def add(self, frame: RealFrame, lanes: list[LaneInstance], shape: tuple[int, int]) -> None:
        """Score `lanes` (instances in the label's pixels, left to right) against the frame's
        label lanes; `shape` is the label's (height, width)."""
        if self.spec is None:
            return
        size = (shape[1], shape[0])
        picked = nearest_lines(lanes, PER_SIDE)
        gt = self.spec.read(frame, shape)
        if self.spec.benchmark == "culane":
            self.frames.append(culane_frame([lane.points for lane in picked], gt, size))
        else:
            rows = tusimple_rows(shape[0])
            pred = tusimple_lanes(picked, rows, size[0])
            self.frames.append(tusimple_frame(pred, gt, rows, size))

    def scores(self) -> dict[str, Any]:
        if self.spec is None:
            return {"benchmark": None, "labels": NO_LINES}
        total = (culane_dataset if self.spec.benchmark == "culane" else tusimple_dataset)(
            self.frames
        )
        return {
            "benchmark": self.spec.benchmark,
            "exact": self.spec.exact,
            "labels": self.spec.labels,
            **total.to_dict(),
        }
