"""Lane instances in the benchmarks' file formats (TuSimple json lines, CULane `.lines.txt`) and
in the labelling tools' (labelme JSON, CVAT for images 1.1 XML), there as pre-labels to correct.

- TuSimple: one json object per frame and line, `{"lanes": [[x, ...], ...], "h_samples":
  [y, ...], "raw_file": "clips/.../20.jpg"}` (+ `run_time` in ms for submissions): one x per
  row of `h_samples`, -2 where the lane has no point on that row or leaves the image.
- CULane: `<frame>.lines.txt`, one lane per line, `x y x y ...` from the bottom of the image up,
  a point every 10 rows as CULane's own labels have them.
- labelme: one json per image, each line a `linestrip` shape labelled `ego_left`, `ego_right`
  or `lane`; CVAT: one `annotations.xml`, each line a `<polyline>` with the same labels. Both
  are read back by `lane_seg.data.importers` (labelme, cvat).

Writers take instances found in a frame of `size` (for example the 512x256 mask) and write them
in a frame of `out_size` (the original image), both (width, height). Readers return what the
metrics in `lane_seg.lanes.metrics` take; a CULane file is read by the one CULane parser,
`lane_seg.data.importers.culane.parse_lines`.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.metrics import NO_POINT, TUSIMPLE_H_SAMPLES, TUSIMPLE_SIZE

CULANE_ROW_STEP = 10

__all__ = [
    "CULANE_ROW_STEP",
    "TuSimpleRecord",
    "culane_lines",
    "cvat_xml",
    "labelme_record",
    "read_tusimple",
    "tusimple_lanes",
    "tusimple_record",
    "tusimple_rows",
]


def _in_frame(
    lanes: Sequence[LaneInstance], size: tuple[int, int] | None, out_size: tuple[int, int] | None
) -> list[LaneInstance]:
    if size is None or out_size is None or tuple(size) == tuple(out_size):
        return list(lanes)
    return [lane.scaled(size, out_size) for lane in lanes]


def tusimple_rows(height: int) -> list[int]:
    """TuSimple's 56 h_samples (rows 160..710 of a 720-row frame) at the same heights of a
    frame `height` rows high, so lanes written for any frame compare with TuSimple's."""
    return sorted({round(y * height / TUSIMPLE_SIZE[1]) for y in TUSIMPLE_H_SAMPLES})


def tusimple_lanes(
    lanes: Sequence[LaneInstance],
    h_samples: Sequence[float],
    out_width: int,
) -> list[list[int]]:
    """One x per row of `h_samples` for every lane (rounded to whole pixels), -2 where the
    polyline does not reach the row or x lies outside [0, out_width); lanes without any point
    on those rows are left out."""
    rows = np.asarray(h_samples, dtype=np.float64)
    out = []
    for lane in lanes:
        x = lane.x_at(rows)
        ok = np.isfinite(x) & (x >= 0) & (x <= out_width - 1)
        if ok.any():
            out.append([int(round(v)) if k else NO_POINT for v, k in zip(x, ok, strict=True)])
    return out


def tusimple_record(
    lanes: Sequence[LaneInstance],
    raw_file: str,
    out_size: tuple[int, int],
    size: tuple[int, int] | None = None,
    h_samples: Sequence[int] = TUSIMPLE_H_SAMPLES,
    run_time_ms: float | None = None,
) -> dict[str, Any]:
    """A TuSimple json object for one frame; `json.dumps` it for one line of the file.

    `h_samples` are rows of the `out_size` frame (TuSimple's 56 rows 160..710 by default)."""
    frame = _in_frame(lanes, size, out_size)
    record: dict[str, Any] = {
        "lanes": tusimple_lanes(frame, h_samples, out_size[0]),
        "h_samples": [int(y) for y in h_samples],
        "raw_file": raw_file,
    }
    if run_time_ms is not None:
        record["run_time"] = round(float(run_time_ms), 3)
    return record


@dataclass(frozen=True)
class TuSimpleRecord:
    raw_file: str
    lanes: list[list[float]]  # one x per h_samples row, -2 = no point
    h_samples: list[float]
    run_time_ms: float | None = None


def read_tusimple(text: str) -> list[TuSimpleRecord]:
    """Records of a TuSimple json-lines file; ValueError naming the line when one is malformed
    (missing fields, lanes whose length differs from h_samples, non-numbers)."""
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            rows = [float(y) for y in obj["h_samples"]]
            lanes = [[float(x) for x in lane] for lane in obj["lanes"]]
            raw_file = str(obj["raw_file"])
            run_time = obj.get("run_time")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"line {n}: not a TuSimple record ({exc})") from None
        bad = [i for i, lane in enumerate(lanes) if len(lane) != len(rows)]
        if bad:
            raise ValueError(f"line {n}: lane {bad[0]} has not one x per h_samples row")
        if not all(math.isfinite(v) for v in rows + [x for lane in lanes for x in lane]):
            raise ValueError(f"line {n}: a value is not a finite number")
        rt = float(run_time) if run_time is not None else None
        records.append(TuSimpleRecord(raw_file, lanes, rows, rt))
    return records


def culane_lines(
    lanes: Sequence[LaneInstance],
    out_size: tuple[int, int],
    size: tuple[int, int] | None = None,
    row_step: int = CULANE_ROW_STEP,
) -> str:
    """The text of a CULane `.lines.txt` for one frame of `out_size`: each lane sampled on
    every `row_step`-th row counted from the bottom row up, `x y` pairs bottom first; lanes
    with fewer than two such points are left out (the evaluator cannot draw them)."""
    frame = _in_frame(lanes, size, out_size)
    rows = np.arange(out_size[1] - 1, -1, -row_step, dtype=np.float64)
    lines = []
    for lane in frame:
        x = lane.x_at(rows)
        ok = np.isfinite(x)
        if ok.sum() >= 2:
            lines.append(
                " ".join(f"{xv:.3f} {yv:g}" for xv, yv in zip(x[ok], rows[ok], strict=True))
            )
    return "".join(line + "\n" for line in lines)


LABELME_VERSION = "5.2.1"  # the labelme file format these records follow


def line_label(lane: LaneInstance) -> str:
    """A pre-label's class: `ego_left`, `ego_right` or `lane` (the importers take any)."""
    return f"ego_{lane.ego}" if lane.ego else "lane"


def _vertices(lane: LaneInstance) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in lane.points]


def labelme_record(
    lanes: Sequence[LaneInstance],
    image_path: str,
    out_size: tuple[int, int],
    size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """A labelme file for one image of `out_size` (`json.dumps` it to `<image stem>.json`):
    each line of two or more points a `linestrip`; `image_path` relative to the json file."""
    shapes = [
        {
            "label": line_label(lane),
            "points": _vertices(lane),
            "group_id": None,
            "description": "",
            "shape_type": "linestrip",
            "flags": {},
        }
        for lane in _in_frame(lanes, size, out_size)
        if len(lane.points) >= 2
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(out_size[1]),
        "imageWidth": int(out_size[0]),
    }


def cvat_xml(images: Sequence[tuple[str, tuple[int, int], Sequence[LaneInstance]]]) -> str:
    """CVAT for images 1.1 XML for (image name, (width, height), lines in it) of each frame."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    for i, (name, (width, height), lanes) in enumerate(images):
        image = ET.SubElement(
            root, "image", id=str(i), name=name, width=str(width), height=str(height)
        )
        for lane in lanes:
            if len(lane.points) < 2:
                continue
            points = ";".join(f"{x:.2f},{y:.2f}" for x, y in _vertices(lane))
            ET.SubElement(
                image, "polyline", label=line_label(lane), source="auto", occluded="0",
                points=points, z_order="0",
            )  # fmt: skip
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
