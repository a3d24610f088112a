"""TuSimple lane labels: json lines with `lanes`, `h_samples` and `raw_file`.

Each line labels one frame: `h_samples` are image rows, each lane lists one x per row, and
x = -2 means the lane has no point on that row. `raw_file` is relative to the folder holding
the json file (the benchmark's `clips/<date>/<clip>/<n>.jpg`), and the clip is that image's
folder. Lines are drawn about 10 px wide at 1280x720 (the usual segmentation-label width for
this benchmark), scaled with the image size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import PurePosixPath

import cv2
import numpy as np

from lane_seg.data.importers.common import Frame, LabelError, Problem, parse_number
from lane_seg.data.importers.sources import Source, join
from lane_seg.lanes.metrics import NO_POINT, TUSIMPLE_SIZE

REF_SIZE = TUSIMPLE_SIZE  # the benchmark's frame
REF_LINE_WIDTH = 10.0


def parse_line(obj: object) -> tuple[str, list[np.ndarray]]:
    """(raw_file, lanes as (N,2) x,y arrays) from one decoded json line; LabelError if bad."""
    if not isinstance(obj, dict):
        raise LabelError("a label line must be a json object")
    for key in ("lanes", "h_samples", "raw_file"):
        if key not in obj:
            raise LabelError(f"missing field {key!r}")
    raw_file = obj["raw_file"]
    if not isinstance(raw_file, str) or not raw_file:
        raise LabelError(f"raw_file must be a path, got {raw_file!r}")
    rows, lanes = obj["h_samples"], obj["lanes"]
    if not isinstance(rows, list) or not isinstance(lanes, list):
        raise LabelError("h_samples and lanes must be lists")
    ys = np.array([parse_number(y, f"h_samples[{i}]") for i, y in enumerate(rows)])
    out = []
    for i, lane in enumerate(lanes):
        if not isinstance(lane, list) or len(lane) != len(ys):
            n = len(lane) if isinstance(lane, list) else type(lane).__name__
            raise LabelError(f"lane {i} has {n} x values for {len(ys)} h_samples")
        xs = np.array([parse_number(x, f"lanes[{i}][{j}]") for j, x in enumerate(lane)])
        keep = xs != NO_POINT
        if keep.any():
            out.append(np.stack([xs[keep], ys[keep]], axis=1))
    return raw_file, out


def label_files(source: Source) -> list[str]:
    """The json label files in a source (TuSimple ships label_data_*.json, test_label.json)."""
    return [f for f in source.files() if f.endswith((".json", ".jsonl"))]


def iter_frames(source: Source, label_paths: list[str] | None = None) -> Iterator[Frame | Problem]:
    for label_path in label_paths or label_files(source):
        base = str(PurePosixPath(label_path).parent)
        try:
            text = source.read(label_path).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            yield Problem(label_path, f"cannot read label file: {exc}")
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{label_path}:{n}"
            try:
                raw_file, lanes = parse_line(json.loads(line))
            except json.JSONDecodeError as exc:
                yield Problem(where, f"not valid json: {exc.msg}")
                continue
            except LabelError as exc:
                yield Problem(where, str(exc))
                continue
            image = join(base, raw_file)
            yield Frame(
                key=image,
                clip=str(PurePosixPath(image).parent),
                image=image,
                lanes=lanes,
                meta={"label": where, "raw_file": raw_file},
            )


def lanes_from_mask(mask: np.ndarray, rows: list[int], min_pixels: int = 50) -> list[list[int]]:
    """TuSimple-style lanes read back from a binary lane mask: one x (or -2) per row.

    Each 8-connected blob of at least `min_pixels` is one lane; on each row its x is the centre
    of its run of lane pixels (the nearest run to the row below when a blob splits). This is
    the inverse of drawing a polyline through h_samples, used to compare masks drawn by other
    tools (LaneNet's gt_binary_image) with ours from the same lane points.
    """
    binary = (mask > 127).astype(np.uint8)
    n, labels = cv2.connectedComponents(binary, connectivity=8)
    lanes = []
    for label in range(1, n):
        blob = labels == label
        if int(blob.sum()) < min_pixels:
            continue
        xs: list[int] = [NO_POINT] * len(rows)
        previous: float | None = None
        for i in sorted(range(len(rows)), key=lambda i: -rows[i]):  # bottom-up
            y = rows[i]
            if not 0 <= y < mask.shape[0]:
                continue
            cols = np.flatnonzero(blob[y])
            if cols.size == 0:
                continue
            runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
            centres = [(r[0] + r[-1]) / 2 for r in runs]
            x = centres[0] if previous is None else min(centres, key=lambda c: abs(c - previous))
            xs[i] = round(x)
            previous = x
        if any(x != NO_POINT for x in xs):
            lanes.append(xs)
    lanes.sort(key=lambda xs: next((x for x in reversed(xs) if x != NO_POINT), 0))
    return lanes
