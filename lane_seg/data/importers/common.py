"""What every importer shares: frames and problems, lane drawing, clip-wise splits, resizing.

An importer turns a benchmark's labels into `Frame`s (an image path in a `Source`, the clip it
belongs to, and either lane polylines or a mask path). Everything after that (validation
against the image size, drawing at the benchmark's line width, crop and resize through
`lane_seg.preprocess`, the split) is the same for every format and lives here.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from lane_seg.preprocess import PreprocessConfig, resize_image, resize_mask

SPLIT_NAMES = ("train", "val", "test")
_SHIFT = 4  # cv2 fixed-point bits: lanes are drawn with 1/16 px precision


class LabelError(ValueError):
    """A label that cannot be turned into a mask (reported per sample, then skipped)."""


@dataclass
class Frame:
    """One labelled frame as found in the source dataset."""

    key: str  # path of the image inside the source: stable, used for the sample id
    clip: str  # frames of one clip always land in the same split
    image: str  # image path inside the source
    lanes: list[np.ndarray] | None = None  # polylines (N,2) x,y in source pixels
    mask: str | None = None  # or a mask path inside the source (format "masks")
    meta: dict[str, Any] = field(default_factory=dict)
    size: tuple[int, int] | None = None  # (width, height) the label file declares, if it does


@dataclass
class Problem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


def parse_number(text: Any, what: str) -> float:
    """A finite float from a label field, or LabelError naming the field."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise LabelError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(f"{what}: {text!r} is not a finite number")
    return value


def check_points(lanes: list[np.ndarray], width: int, height: int, margin: float) -> None:
    """Reject lanes with points outside the image by more than `margin` x its size.

    Benchmarks extrapolate lanes slightly past the border (CULane has x of -27 at 1640 px), so
    a small margin is normal; a point far outside means a label for another image size.
    """
    mx, my = margin * width, margin * height
    for i, pts in enumerate(lanes):
        bad = (pts[:, 0] < -mx) | (pts[:, 0] > width - 1 + mx)
        bad |= (pts[:, 1] < -my) | (pts[:, 1] > height - 1 + my)
        if bad.any():
            x, y = pts[np.argmax(bad)]
            raise LabelError(
                f"lane {i}: point ({x:g}, {y:g}) lies outside the {width}x{height} image"
            )


def line_width_px(ref_width_px: float, ref_size: tuple[int, int], size: tuple[int, int]) -> float:
    """The benchmark's line width (`ref_width_px` at `ref_size` WxH) scaled to an image `size`.

    Scaled by the geometric mean of the two axis ratios, so an image with another aspect ratio
    gets a width in proportion to its overall size.
    """
    sx = size[0] / ref_size[0]
    sy = size[1] / ref_size[1]
    return ref_width_px * math.sqrt(sx * sy)


def draw_lanes(height: int, width: int, lanes: list[np.ndarray], line_width: float) -> np.ndarray:
    """0/255 mask with every polyline drawn `line_width` px wide (sub-pixel vertices)."""
    mask = np.zeros((height, width), np.uint8)
    thickness = max(1, round(line_width))
    scale = 1 << _SHIFT
    polys = [np.round(p * scale).astype(np.int32).reshape(-1, 1, 2) for p in lanes if len(p)]
    if polys:
        cv2.polylines(mask, polys, False, 255, thickness, cv2.LINE_8, _SHIFT)
    return mask


@dataclass(frozen=True)
class Crop:
    """A rectangle x, y, w, h in source pixels; w or h <= 0 counts back from the far edge
    (0 = up to the edge), so '0,160,0,0' drops the top 160 rows of any frame."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> Crop:
        parts = text.split(",")
        if len(parts) != 4 or not all(re.fullmatch(r"-?\d+", p.strip()) for p in parts):
            raise ValueError(f"crop must be X,Y,W,H in pixels, got {text!r}")
        x, y, w, h = (int(p) for p in parts)
        if x < 0 or y < 0:
            raise ValueError(f"crop {text!r}: X and Y must be >= 0")
        return cls(x, y, w, h)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        w = self.w if self.w > 0 else width - self.x + self.w
        h = self.h if self.h > 0 else height - self.y + self.h
        if w <= 0 or h <= 0 or self.x + w > width or self.y + h > height:
            raise LabelError(f"crop {self} does not fit the {width}x{height} image")
        return self.x, self.y, w, h

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def transform(
    image: np.ndarray, mask: np.ndarray, crop: Crop | None, size: PreprocessConfig | None
) -> tuple[np.ndarray, np.ndarray]:
    """Crop, then resize with the one preprocessing path (image area-averaged, mask 0/255)."""
    if crop is not None:
        x, y, w, h = crop.box(image.shape[1], image.shape[0])
        image, mask = image[y : y + h, x : x + w], mask[y : y + h, x : x + w]
    if size is not None:
        image, mask = resize_image(image, size), resize_mask(mask, size)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def _rank(seed: int, clip: str) -> str:
    return hashlib.sha256(f"{seed}:{clip}".encode()).hexdigest()


def assign_splits(
    clip_sizes: dict[str, int], fractions: tuple[float, float, float], seed: int = 0
) -> dict[str, str]:
    """clip -> split, whole clips only, frame counts close to `fractions` (train, val, test).

    Clips are taken in a seeded hash order and each goes to the split furthest below its share
    of frames, so near-identical neighbours in one clip never straddle two splits, and the same
    inputs always give the same assignment (a resumed import agrees with the first run).
    """
    total = sum(clip_sizes.values())
    if total == 0:
        return {}
    norm = sum(fractions)
    target = [f / norm * total for f in fractions]
    have = [0, 0, 0]
    out: dict[str, str] = {}
    # The largest clips first, so small ones can fill the remaining gaps.
    order = sorted(clip_sizes, key=lambda c: (-clip_sizes[c], _rank(seed, c)))
    for clip in order:
        deficits = [target[i] - have[i] if fractions[i] > 0 else -math.inf for i in range(3)]
        i = int(np.argmax(deficits))
        out[clip] = SPLIT_NAMES[i]
        have[i] += clip_sizes[clip]
    return out


def parse_fractions(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"split must be three numbers TRAIN,VAL,TEST, got {text!r}") from None
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"split must be three non-negative numbers TRAIN,VAL,TEST, got {text!r}")
    return values[0], values[1], values[2]


_ID_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def sample_id(prefix: str, key: str) -> str:
    """A file-name-safe id from a source path: 'clips/0313-1/60/20.jpg' -> 'clips-0313-1-60-20'."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    body = _ID_BAD.sub("_", stem.strip("/").replace("/", "-")).lstrip(".")
    return f"{prefix}{body}"
