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

import numpy as np

from lane_seg.importers.common import Frame, LabelError, Problem, parse_number
from lane_seg.importers.sources import Source, join

REF_SIZE = (1280, 720)
REF_LINE_WIDTH = 10.0
NO_POINT = -2


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
