"""CVAT for images 1.1 XML: `annotations.xml`, one `<image>` per frame, lane lines as `<polyline>`.

    <annotations><version>1.1</version>
      <image id="0" name="clip_a/0001.jpg" width="1280" height="720">
        <polyline label="lane" points="101.5,719.0;580.2,400.0" .../>
      </image>
    </annotations>

Every `<polyline>` is one lane line in the lines convention (docs/architecture.md, "Label
conventions"), whatever its label; other shapes are not lane lines. `name` is relative to the
XML file's folder, or to its `images/` folder as CVAT's own export lays it out. The clip is the
image's folder, or the first group of `clip_pattern` matched on its path.

An XML file that does not parse, or is not CVAT's, makes the whole input unusable: a
`LaneSegError` (one line, exit 2). A bad `<image>` in a good file is one `Problem`, skipped.
`lane_seg.lanes.formats.cvat_xml` writes this format (`lane-seg infer --export cvat`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np

from lane_seg.data.importers.common import Frame, LabelError, Problem, parse_number
from lane_seg.data.importers.labelme import clip_of, image_size
from lane_seg.data.importers.sources import Source, join
from lane_seg.errors import LaneSegError

IMAGES_FOLDER = "images"  # where CVAT's export puts the frames, beside annotations.xml


def parse_points(text: str | None, where: str) -> np.ndarray:
    """'x1,y1;x2,y2;...' -> (N,2) array; LabelError unless at least two finite pairs."""
    pairs = [p for p in (text or "").split(";") if p.strip()]
    if len(pairs) < 2:
        raise LabelError(f"{where}: points must hold at least two x,y pairs")
    pts = []
    for j, pair in enumerate(pairs):
        xy = pair.split(",")
        if len(xy) != 2:
            raise LabelError(f"{where}: point {j} {pair!r} is not x,y")
        what = f"{where} point {j}"
        pts.append([parse_number(xy[0], f"{what} x"), parse_number(xy[1], f"{what} y")])
    return np.asarray(pts, dtype=np.float64)


def parse_image(elem: ET.Element) -> tuple[str, tuple[int, int], list[np.ndarray]]:
    """(name, (width, height), lane lines) of one `<image>`; LabelError when it is malformed."""
    name = (elem.get("name") or "").strip()
    if not name:
        raise LabelError("an <image> without a name")
    size = image_size(dict(elem.attrib), "width", "height")
    lanes = [
        parse_points(poly.get("points"), f"polyline {i}")
        for i, poly in enumerate(elem.iter("polyline"))
    ]
    return name.replace("\\", "/"), size, lanes


def read_xml(data: bytes, where: str) -> ET.Element:
    """The root `<annotations>` of a CVAT file; LaneSegError when the file is not one."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # entity expansion: never needed by CVAT
        raise LaneSegError(f"{where}: declares a DOCTYPE or entities; CVAT files have none")
    try:
        root = ET.fromstring(data)  # noqa: S314 (no DOCTYPE, so no entity to expand)
    except ET.ParseError as exc:
        raise LaneSegError(f"{where} is not valid XML: {exc}") from None
    if root.tag != "annotations":
        raise LaneSegError(f"{where}: root element <{root.tag}>, CVAT for images has <annotations>")
    return root


def xml_files(source: Source) -> list[str]:
    files = [f for f in source.files() if f.lower().endswith(".xml")]
    if not files:
        raise LaneSegError(f"no .xml file in {source.name}; give CVAT's annotations.xml or folder")
    return files


def _image_path(source: Source, base: str, name: str) -> str | None:
    for folder in (base, join(base, IMAGES_FOLDER)):
        path = join(folder, name)
        if source.exists(path):
            return path
    return None


def iter_frames(
    source: Source, files: list[str], clip_pattern: str | None = None
) -> Iterator[Frame | Problem]:
    """The frames of CVAT `files` in `source`; every file is parsed now, before any is used."""
    roots = [(f, read_xml(source.read(f), f)) for f in files]
    return _frames(source, roots, re.compile(clip_pattern) if clip_pattern else None)


def _frames(
    source: Source, roots: list[tuple[str, ET.Element]], pattern: re.Pattern[str] | None
) -> Iterator[Frame | Problem]:
    for label, root in roots:
        base = str(PurePosixPath(label).parent)
        for n, elem in enumerate(root.iter("image")):
            where = f"{label}: image {elem.get('name') or n}"
            try:
                name, size, lanes = parse_image(elem)
            except LabelError as exc:
                yield Problem(where, str(exc))
                continue
            image = _image_path(source, base, name)
            if image is None:
                yield Problem(where, f"image {name} is missing (beside {label} or in images/)")
                continue
            yield Frame(
                key=image,
                clip=clip_of(image, pattern),
                image=image,
                lanes=lanes,
                size=size,
                meta={"label": where},
            )
