"""labelme JSON: one `<frame>.json` per labelled image, lane lines as `linestrip` or `line` shapes.

A labelme file holds `imagePath` (relative to the json file; labelme writes the image's name
when both sit in one folder), `imageWidth`, `imageHeight` and `shapes`, each with a
`shape_type` and `points` [[x, y], ...] in image pixels. Every `linestrip` and `line` shape is
one lane line in the lines convention (docs/architecture.md, "Label conventions"), whatever its
label; other shapes (polygons, rectangles, points) are not lane lines and are left out. A file
without line shapes is a frame without lane lines (an empty mask). The clip is the image's
folder, or the first group of `clip_pattern` matched on its path, as for image+mask folders.

`lane_seg.lanes.formats.labelme_record` writes this format (`lane-seg infer --export labelme`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from lane_seg.data.importers.common import Frame, LabelError, Problem, parse_number
from lane_seg.data.importers.sources import Source, join

LINE_SHAPES = ("linestrip", "line")


def image_size(obj: dict[str, Any], width_key: str, height_key: str) -> tuple[int, int]:
    """(width, height) a label file declares; LabelError unless both are positive integers."""
    size = []
    for key in (width_key, height_key):
        value = parse_number(obj.get(key), key)
        if value < 1 or value != int(value):
            raise LabelError(f"{key} must be a positive whole number of pixels, got {value:g}")
        size.append(int(value))
    return size[0], size[1]


def _points(raw: Any, where: str) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) < 2:
        raise LabelError(f"{where}: points must list at least two [x, y] pairs")
    pts = []
    for j, p in enumerate(raw):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise LabelError(f"{where}: point {j} is not an [x, y] pair")
        what = f"{where} point {j}"
        pts.append([parse_number(p[0], f"{what} x"), parse_number(p[1], f"{what} y")])
    return np.asarray(pts, dtype=np.float64)


def parse(obj: Any) -> tuple[str, tuple[int, int], list[np.ndarray]]:
    """(imagePath, (width, height), lane lines as (N,2) x,y arrays) of one decoded labelme
    file; LabelError naming the field when it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("shapes"), list):
        raise LabelError("not a labelme file (no 'shapes' list)")
    path = obj.get("imagePath")
    if not isinstance(path, str) or not path.strip():
        raise LabelError("imagePath must name the labelled image")
    size = image_size(obj, "imageWidth", "imageHeight")
    lanes = []
    for i, shape in enumerate(obj["shapes"]):
        if not isinstance(shape, dict):
            raise LabelError(f"shapes[{i}] is not an object")
        if shape.get("shape_type", "polygon") in LINE_SHAPES:
            lanes.append(_points(shape.get("points"), f"shapes[{i}]"))
    return path.replace("\\", "/"), size, lanes  # labelme on Windows writes backslashes


def clip_of(path: str, pattern: re.Pattern[str] | None) -> str:
    """The image's folder, or the first group of `pattern` (the whole match without groups)."""
    clip = str(PurePosixPath(path).parent)
    if pattern is not None:
        m = pattern.search(path)
        clip = m.group(1) if m and m.groups() else (m.group(0) if m else clip)
    return clip


def iter_frames(source: Source, clip_pattern: str | None = None) -> Iterator[Frame | Problem]:
    pattern = re.compile(clip_pattern) if clip_pattern else None
    for label in source.files():
        if not label.lower().endswith(".json"):
            continue
        try:
            obj = json.loads(source.read(label).decode("utf-8"))
            image_path, size, lanes = parse(obj)
        except UnicodeDecodeError:
            yield Problem(label, "not a text file")
            continue
        except json.JSONDecodeError as exc:
            yield Problem(label, f"not valid json: {exc.msg} (line {exc.lineno})")
            continue
        except LabelError as exc:
            yield Problem(label, str(exc))
            continue
        image = join(str(PurePosixPath(label).parent), image_path)
        if not source.exists(image):
            yield Problem(label, f"image {image_path} is missing (looked for {image})")
            continue
        clip = clip_of(image, pattern)
        yield Frame(image, clip, image, lanes, size=size, meta={"label": label})
