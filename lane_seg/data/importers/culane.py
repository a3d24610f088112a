"""CULane lane labels: `<frame>.lines.txt` beside each frame, one lane per line `x y x y ...`.

Frames are found either by walking the source for images with a `.lines.txt` beside them, or
from a list file (CULane's `list/train_gt.txt`, `test.txt`: the image path is the first token
of each line, relative to the dataset root). The clip is the frame's folder (one video, for
example `driver_23_30frame/05151649_0422.MP4`). Lines are drawn 16 px wide at 1640x590, the
width of CULane's own segmentation labels and of its evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np

from lane_seg.data.importers.common import Frame, LabelError, Problem, parse_number
from lane_seg.data.importers.sources import Source
from lane_seg.lanes.metrics import CULANE_SIZE

REF_SIZE = CULANE_SIZE  # the benchmark's frame
REF_LINE_WIDTH = 16.0
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def label_path(image: str) -> str:
    return str(PurePosixPath(image).with_suffix(".lines.txt"))


def parse_lines(text: str) -> list[np.ndarray]:
    """Lanes as (N,2) x,y arrays from a .lines.txt; LabelError if a line is malformed."""
    lanes = []
    for n, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) % 2:
            raise LabelError(f"line {n}: odd number of values ({len(tokens)}), expected x y pairs")
        values = [parse_number(t, f"line {n}") for t in tokens]
        lanes.append(np.asarray(values, dtype=np.float64).reshape(-1, 2))
    return lanes


def _frame(source: Source, image: str, where: str) -> Frame | Problem:
    if not source.exists(image):
        return Problem(where, f"image {image} is missing")
    labels = label_path(image)
    if not source.exists(labels):
        return Problem(where, f"label file {labels} is missing")
    try:
        lanes = parse_lines(source.read(labels).decode("utf-8"))
    except UnicodeDecodeError:
        return Problem(where, f"{labels} is not a text file")
    except LabelError as exc:
        return Problem(where, f"{labels}: {exc}")
    return Frame(
        key=image,
        clip=str(PurePosixPath(image).parent),
        image=image,
        lanes=lanes,
        meta={"label": labels},
    )


def iter_frames(source: Source, list_file: str | None = None) -> Iterator[Frame | Problem]:
    if list_file is not None:
        text = source.read(list_file).decode("utf-8")
        for n, line in enumerate(text.splitlines(), start=1):
            tokens = line.split()
            if tokens:
                yield _frame(source, tokens[0].lstrip("/"), f"{list_file}:{n}")
        return
    for path in source.files():
        if path.lower().endswith(IMAGE_EXTS) and source.exists(label_path(path)):
            yield _frame(source, path, path)
