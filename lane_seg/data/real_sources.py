"""The labelled real frames beside the project, each read by its own label convention.

A real source is a folder under the shared data root (`../shared/data` beside a checkout) with
a SOURCE.txt naming its licence. Each is scored by the labels it ships with, at their own
resolution: CULane's lines drawn 16 px wide at 1640x590 (or its official `laneseg_label_w16`
masks), LaneNet's binary masks of TuSimple lines, comma10k's painted-marking class, tvtLANE's
JPEG masks. Two conventions meet here (docs/architecture.md, "Label conventions"):

- "lines": every lane line of the ego lane and its neighbours as one continuous line of
  constant width, through the gaps of dashed paint and behind vehicles (CULane, TuSimple);
- "paint": the painted markings only, each dash on its own (comma10k).

`clip` groups frames that must stay on one side of a train/test split (one drive, or a
30-second stretch of the one CULane drive we have), and `shippable` says whether the source's
terms allow shipping weights trained on it (MIT, Apache-2.0) or only evaluating on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lane_seg.errors import LaneSegError

CULANE_SIZE = (1640, 590)
CULANE_WIDTH = 16  # px at CULANE_SIZE, CULane's own label width
NIGHT_LUMA = 40  # mean luma (0..255) of the top 40 % of the frame below which it is night
TRAIN_SHARE = 0.7  # of a source's clips, when a model trains on it


@dataclass(frozen=True)
class RealFrame:
    source: str
    key: str  # path relative to the source folder: the frame's identity
    clip: str
    image: Path
    label: Callable[[], np.ndarray]  # -> 0/255 uint8 mask at the label's resolution


@dataclass(frozen=True)
class RealSource:
    name: str
    folder: str  # relative to the data root
    convention: str  # "lines" | "paint"
    licence: str
    shippable: bool
    find: Callable[[Path], Iterator[RealFrame]]

    def frames(self, data_root: Path) -> list[RealFrame]:
        return sorted(self.find(data_root / self.folder), key=lambda f: f.key)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise LaneSegError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _gray(path: Path) -> np.ndarray:
    g = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if g is None:
        raise LaneSegError(f"cannot read label {path}")
    return g


def _binary(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def culane_lines(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A CULane .lines.txt drawn as CULane's labels are (0/255): 16 px at 1640x590, scaled."""
    h, w = shape
    width = max(1, round(CULANE_WIDTH * w / CULANE_SIZE[0]))
    mask = np.zeros(shape, np.uint8)
    for line in path.read_text().splitlines():
        values = [float(t) for t in line.split()]
        if len(values) >= 4:
            pts = np.round(np.asarray(values).reshape(-1, 2)).astype(np.int32)
            cv2.polylines(mask, [pts], False, 255, width)
    return mask


def _culane_driver23(root: Path) -> Iterator[RealFrame]:
    video = "driver_23_30frame/05151649_0422.MP4"
    for jpg in (root / video).glob("*.jpg"):
        png = root / "laneseg_label_w16" / video / f"{jpg.stem}.png"
        # One drive, a frame a second: 30-second stretches are the clips of a split.
        yield RealFrame(
            "culane_driver23",
            f"{video}/{jpg.name}",
            f"{video}@{int(jpg.stem) // 900}",
            jpg,
            lambda png=png: _binary(_gray(png) > 0),
        )


def _culane_night(root: Path) -> Iterator[RealFrame]:
    for jpg in root.glob("*.jpg"):
        txt = jpg.with_suffix(".lines.txt")
        shape = (CULANE_SIZE[1], CULANE_SIZE[0])
        yield RealFrame(
            "culane_night",
            jpg.name,
            "nightblur05312336_0004",
            jpg,
            lambda txt=txt, shape=shape: culane_lines(txt, shape),
        )


def _tusimple_lanenet(root: Path) -> Iterator[RealFrame]:
    for png in (root / "image").glob("*.png"):
        label = root / "gt_binary_image" / png.name
        # Each frame is the last of its own TuSimple clip.
        yield RealFrame(
            "tusimple_lanenet",
            f"image/{png.name}",
            png.stem,
            png,
            lambda label=label: _binary(_gray(label) > 127),
        )


def _comma10k(root: Path) -> Iterator[RealFrame]:
    for png in (root / "imgs").glob("*.png"):
        label = root / "masks" / png.name
        drive = png.stem.split("_")[1]  # <n>_<dongle>_<route>... : one drive per dongle id
        yield RealFrame(
            "comma10k_sample",
            f"imgs/{png.name}",
            drive,
            png,
            lambda label=label: _comma_lane(label),
        )


def _comma_lane(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise LaneSegError(f"cannot read label {path}")
    return _binary((bgr[..., 2] > 200) & (bgr[..., 1] < 60) & (bgr[..., 0] < 60))  # (255, 0, 0)


def _tvtlane(root: Path) -> Iterator[RealFrame]:
    test = root / "testset"
    for truth in (test / "truth").glob("*.jpg"):
        yield RealFrame(
            "tvtlane",
            f"testset/image/{truth.name}",
            truth.stem.split("_")[0],
            test / "image" / truth.name,
            lambda truth=truth: _binary(_gray(truth) > 127),
        )


SOURCES = {
    s.name: s
    for s in (
        RealSource(
            "culane_driver23",
            "real_train/culane_driver23",
            "lines",
            "CULane: non-commercial research only",
            False,
            _culane_driver23,
        ),
        RealSource(
            "culane_night",
            "real/culane_night",
            "lines",
            "CULane: non-commercial research only",
            False,
            _culane_night,
        ),
        RealSource(
            "tusimple_lanenet",
            "real/tusimple_lanenet",
            "lines",
            "Apache-2.0 (LaneNet's masks of TuSimple frames)",
            True,
            _tusimple_lanenet,
        ),
        RealSource(
            "comma10k_sample",
            "real_train/comma10k_sample",
            "paint",
            "MIT (comma10k)",
            True,
            _comma10k,
        ),
        RealSource(
            "tvtlane",
            "real/tvtlane",
            "lines",
            "tvtLANE: academic research only",
            False,
            _tvtlane,
        ),
    )
}


def available(data_root: Path) -> list[RealSource]:
    """The sources present under `data_root` (absent ones are skipped, not errors)."""
    return [s for s in SOURCES.values() if (data_root / s.folder).is_dir()]


def condition(rgb: np.ndarray) -> str:
    """'night' when the upper part of the frame (sky, skyline) is dark, else 'day'."""
    top = cv2.cvtColor(rgb[: int(rgb.shape[0] * 0.4)], cv2.COLOR_RGB2GRAY)
    return "night" if float(top.mean()) < NIGHT_LUMA else "day"


def split_of(frame: RealFrame) -> str:
    """'train' or 'test' for a frame's clip: a fixed hash, so every tool agrees which frames
    a model that trains on this source may see and which it is scored on."""
    digest = hashlib.sha256(f"{frame.source}/{frame.clip}".encode()).digest()
    return "train" if digest[0] / 256 < TRAIN_SHARE else "test"
