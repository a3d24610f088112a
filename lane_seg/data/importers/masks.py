"""Image folder + binary mask folder (for example LaneNet's `image/` and `gt_binary_image/`).

A mask is paired with the image of the same relative path and stem (any image extension), so
`image/a/0001.jpg` pairs with `gt_binary_image/a/0001.png`. Mask pixels above `threshold` are
lane (127 suits 0/255 masks, also JPEG-compressed ones; 0 suits label-index masks 0..4).
The clip is the image's folder, or the first group of `clip_pattern` matched on its path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from lane_seg.data.importers.common import Frame, Problem
from lane_seg.data.importers.sources import Source

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def iter_frames(
    images: Source, masks: Source, clip_pattern: str | None = None
) -> Iterator[Frame | Problem]:
    by_stem: dict[str, str] = {}
    for path in masks.files():
        if path.lower().endswith(IMAGE_EXTS):
            by_stem.setdefault(str(PurePosixPath(path).with_suffix("")), path)
    pattern = re.compile(clip_pattern) if clip_pattern else None
    for path in images.files():
        if not path.lower().endswith(IMAGE_EXTS):
            continue
        mask = by_stem.get(str(PurePosixPath(path).with_suffix("")))
        if mask is None:
            yield Problem(path, f"no mask for it in {masks.name}")
            continue
        clip = str(PurePosixPath(path).parent)
        if pattern is not None:
            m = pattern.search(path)
            clip = m.group(1) if m and m.groups() else (m.group(0) if m else clip)
        yield Frame(key=path, clip=clip, image=path, mask=mask, meta={"label": mask})
