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

from lane_seg.data.importers.common import LabelError, check_points
from lane_seg.data.importers.culane import parse_lines
from lane_seg.images import decode_image

CULANE_SIZE = (1640, 590)
CULANE_WIDTH = 16  # px at CULANE_SIZE, CULane's own label width
NIGHT_LUMA = 40  # mean luma (0..255) of the top 40 % of the frame below which it is night
TRAIN_SHARE = 0.7  # of a source's clips, when a model trains on it
LABEL_MARGIN = 0.1  # label points may lie this share of the frame outside it (import --margin)


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


def _decoded(path: Path, flags: int, what: str) -> np.ndarray:
    """A file decoded by `lane_seg.images` (so OpenCV prints nothing of its own for a missing
    or damaged one); LabelError, which skips the frame, if it cannot be."""
    data = np.fromfile(path, np.uint8) if path.is_file() else None
    image = decode_image(data, flags) if data is not None else None
    if image is None:
        raise LabelError(f"cannot read {what} {path}: missing or not an image")
    return image


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(_decoded(path, cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def _gray(path: Path) -> np.ndarray:
    return _decoded(path, cv2.IMREAD_GRAYSCALE, "label")


def load_frame(frame: RealFrame) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, 0/255 label) of `frame`, the label checked against the image: LabelError
    when either cannot be read, the label is malformed or it is of another size, and every
    reader (import, the scoreboard) skips the frame and reports it, as the culane and masks
    importers do."""
    rgb, label = read_rgb(frame.image), frame.label()
    if label.shape != rgb.shape[:2]:
        raise LabelError(
            f"its label is {label.shape[1]}x{label.shape[0]}, its image "
            f"{rgb.shape[1]}x{rgb.shape[0]}"
        )
    return rgb, label


def culane_label_lanes(path: Path) -> list[np.ndarray]:
    """The lanes of a CULane .lines.txt, in CULane's 1640x590 pixels; LabelError if the file
    cannot be read, a value is not a finite number, a line holds an odd count of them, or a
    point lies far outside the frame (LABEL_MARGIN; 1e12 would draw a stray stroke)."""
    try:
        lanes = parse_lines(path.read_text())
        check_points(lanes, *CULANE_SIZE, LABEL_MARGIN)
    except (OSError, UnicodeDecodeError):
        raise LabelError(f"cannot read label {path}") from None
    except LabelError as exc:
        raise LabelError(f"{path.name}: {exc}") from None
    return lanes


def _binary(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def culane_lines(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A CULane .lines.txt drawn as CULane's labels are (0/255): 16 px at 1640x590, scaled."""
    h, w = shape
    width = max(1, round(CULANE_WIDTH * w / CULANE_SIZE[0]))
    mask = np.zeros(shape, np.uint8)
    for lane in culane_label_lanes(path):
        if len(lane) >= 2:
            cv2.polylines(mask, [np.round(lane).astype(np.int32)], False, 255, width)
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
    bgr = _decoded(path, cv2.IMREAD_COLOR, "label")
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
