"""The one frame reader of files: a video, an image or a folder of images -> RGB frames.

Every command that reads frames from files goes through here (`infer`, `adapt`, `pseudo-label`,
`demo --input`, the unlabelled frames of training, the timing frames of the benches); a rosbag2
folder goes through `lane_seg.ros.recorded`, which dispatches between this and the bag reader
(docs/architecture.md, the layer rule). What a bag is (`is_bag`), what an opened recording
holds (`Recorded`) and the one line for a path that is none of these (`not_frames`) live here,
so the commands below the ros layer name them the same way. Images are read by
`lane_seg.data.dataset.read_image` (the pixel cap of `lane_seg.images`); a video keeps the frame
count its header declares, so a file that decodes fewer is reported as truncated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lane_seg.data.dataset import read_image
from lane_seg.errors import LaneSegError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


@dataclass(frozen=True)
class Frame:
    key: str  # the image's path, or <video>#<frame index>
    clip: str  # frames of one clip share it: the video, the image's folder or the image
    rgb: np.ndarray


@dataclass
class Recorded:
    """An opened video, folder of images or rosbag2 topic (`lane_seg.ros.recorded`)."""

    frames: Iterator[Frame]
    fps: float  # the source's own rate; 0 when it does not say (images)
    count: int = 0  # frames it declares (a video's header, a bag's metadata); 0: unknown


def not_frames(src: str | Path) -> LaneSegError:
    """The one line for an input that is no video, image, folder of images or rosbag2."""
    return LaneSegError(
        f"{src}: give a video ({', '.join(VIDEO_EXTS)}), an image ({', '.join(IMAGE_EXTS)}), "
        "a folder of images or a rosbag2 folder (with metadata.yaml)"
    )


def is_bag(path: str | Path) -> bool:
    """A rosbag2 folder: its metadata.yaml beside the data files."""
    return Path(path).is_dir() and (Path(path) / "metadata.yaml").is_file()


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def image_files(folder: Path) -> list[Path]:
    """The images under `folder` (recursively), in path order."""
    return sorted(f for f in folder.rglob("*") if f.is_file() and is_image(f))


class Video:
    """An opened video file: its rate (0 when it does not say), the frame count its header
    declares, and its frames once. Refused with a `LaneSegError` when it does not open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            self._cap.release()
            raise LaneSegError(f"{path}: unreadable video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if math.isfinite(fps) and fps > 0 else 0.0
        self.declared = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.decoded = 0  # frames decoded so far

    def frames(self, every: int = 1, limit: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB) of every `every`-th frame, at most `limit` of them (0: all); the video
        is closed when the iteration ends."""
        yielded = 0
        try:
            while not limit or yielded < limit:
                ok, bgr = self._cap.read()
                if not ok:
                    return
                i, self.decoded = self.decoded, self.decoded + 1
                if i % every == 0:
                    yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yielded += 1
        finally:
            self.close()

    def truncated(self) -> bool:
        """Read to its end, it decoded fewer frames than its header declares."""
        return self.decoded < self.declared

    def close(self) -> None:
        self._cap.release()


def video_info(path: str | Path) -> tuple[float, int]:
    """(frame rate, declared frame count) of a video; (0, 0) when it does not open."""
    try:
        video = Video(path)
    except LaneSegError:
        return 0.0, 0
    video.close()
    return video.fps, video.declared


def file_frames(path: str | Path, every: int = 1, limit: int = 0) -> Iterator[Frame]:
    """The frames of one file: every `every`-th frame of a video (one clip), or the image
    (its own clip). A file that cannot be read raises `LaneSegError` before any frame."""
    key = str(path)
    if is_video(path):
        video = Video(path)
        for i, rgb in video.frames(every, limit):
            yield Frame(f"{key}#{i}", key, rgb)
    else:
        yield Frame(key, key, read_image(Path(path)))


def folder_frames(folder: Path, every: int = 1, limit: int = 0) -> Iterator[Frame]:
    """Every `every`-th image under `folder`, in path order, at most `limit` (0: all); the
    images of one sub-folder are one clip. Unreadable images are skipped."""
    yielded = 0
    for i, f in enumerate(image_files(folder)):
        if limit and yielded >= limit:
            return
        if i % every:
            continue
        try:
            yield Frame(str(f), str(f.parent), read_image(f))
        except LaneSegError:
            continue
        yielded += 1


def timing_frames(folder: Path | None, size_hw: tuple[int, int], count: int) -> list[np.ndarray]:
    """The first `count` readable JPEG / PNG images directly in `folder`, in name order, as RGB
    at `size_hw`: what `lane-seg bench` and the node bench time on; none without that
    folder (the callers fall back to frames of their own)."""
    if folder is None or not folder.is_dir():
        return []
    frames = []
    for f in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png")):
        if len(frames) == count:
            break
        try:
            rgb = read_image(f)
        except LaneSegError:
            continue
        if rgb.shape[:2] != size_hw:
            rgb = cv2.resize(rgb, size_hw[::-1], interpolation=cv2.INTER_AREA)
        frames.append(rgb)
    return frames
