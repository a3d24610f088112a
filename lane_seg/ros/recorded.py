"""Recorded frames: a video, an image, a folder of images or a rosbag2 folder -> RGB frames,
the one opener of every command that takes a camera's frames: `lane-seg adapt --frames`,
`lane-seg demo --input`, the bags among `lane-seg infer`'s inputs and `lane-seg pseudo-label
--frames` (`glob_frames`).

Files go through `lane_seg.data.frames` (the one reader of videos and images), bags through
`lane_seg.ros.bag` (`image_topic` checks the topic, `iter_images` reads it); the dispatch sits
here because the ros layer may import both and the data layer may not import ros
(docs/architecture.md, the layer rule). No rclpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

import numpy as np

from lane_seg.data.frames import (
    Frame,
    Recorded,
    Video,
    file_frames,
    folder_frames,
    is_bag,
    is_image,
    is_video,
    not_frames,
)
from lane_seg.data.unlabelled import matched_files, readable_frames
from lane_seg.errors import LaneSegError
from lane_seg.ros.bag import image_topic, iter_images


def recorded_frames(
    src: str | Path, topic: str | None = None, every: int = 1, limit: int = 0
) -> Recorded:
    """Every `every`-th frame of `src`, at most `limit` (0: all); of a bag, those of image
    `topic` (None: its first image topic). The path is checked, a video opened and a bag's
    topic checked here, before any frame is read: a bad input fails before the work starts,
    in one line (`lane_seg.data.frames.not_frames`, `lane_seg.ros.bag.image_topic`)."""
    path = Path(src)
    if not path.exists():
        raise LaneSegError(f"{src}: not found")
    if is_bag(path):
        return _bag_frames(path, topic, every, limit)
    if path.is_dir() and any(folder_frames(path, limit=1)):
        return Recorded(folder_frames(path, every, limit), 0.0)
    if path.is_file() and is_image(path):
        return Recorded(iter(list(file_frames(path))), 0.0, 1)  # read now: refused now
    if path.is_file() and is_video(path):
        video = Video(path)
        frames = (Frame(f"{src}#{i}", str(src), rgb) for i, rgb in video.frames(every, limit))
        return Recorded(frames, video.fps, _strided(video.declared, every, limit))
    raise not_frames(src)


def _bag_frames(path: Path, topic: str | None, every: int, limit: int) -> Recorded:
    bag = image_topic(path, topic)
    images = islice(iter_images(path, bag.topic), 0, None, every)
    frames = (Frame(f"{path}#{i * every}", str(path), rgb) for i, rgb in enumerate(images))
    return Recorded(islice(frames, limit or None), bag.fps, _strided(bag.count, every, limit))


def _strided(count: int, every: int, limit: int) -> int:
    n = -(-count // every)
    return min(n, limit) if limit else n


def glob_frames(
    patterns: Sequence[str], every: int = 1, topic: str | None = None
) -> Iterator[tuple[str, str, np.ndarray]]:
    """`lane_seg.data.unlabelled.unlabelled_frames` with the rosbag2 folders the glob
    `patterns` match read as well (a bag is one clip, every `every`-th frame of `topic`).
    Each bag's topic is checked here, before any frame is read; files that cannot be read
    are skipped."""
    paths = matched_files(patterns)
    bags = {p: recorded_frames(p, topic, every) for p in paths if is_bag(p)}
    return _glob_frames(paths, bags, every)


def _glob_frames(
    paths: list[str], bags: dict[str, Recorded], every: int
) -> Iterator[tuple[str, str, np.ndarray]]:
    for path in paths:
        if path in bags:
            yield from ((f.key, f.clip, f.rgb) for f in bags[path].frames)
        else:
            yield from readable_frames(path, every)
