"""Recorded frames: a video, a folder of images or a rosbag2 folder -> RGB frames, the one
dispatch of `lane-seg adapt --frames` and `lane-seg demo --input`.

Files go through `lane_seg.data.frames` (the one reader of videos and images), bags through
`lane_seg.ros.bag.iter_images`; the dispatch sits here because the ros layer may import both and
the data layer may not import ros (docs/architecture.md, the layer rule). No rclpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from lane_seg.data.frames import VIDEO_EXTS, Frame, Video, folder_frames, is_video
from lane_seg.errors import LaneSegError
from lane_seg.ros.bag import iter_images


@dataclass
class Recorded:
    frames: Iterator[Frame]
    fps: float  # the video's own rate; 0 when the source does not say (images, bags)


def is_bag(path: Path) -> bool:
    return path.is_dir() and (path / "metadata.yaml").is_file()


def recorded_frames(
    src: str | Path, topic: str | None = None, every: int = 1, limit: int = 0
) -> Recorded:
    """Every `every`-th frame of `src`, at most `limit` (0: all). The path is checked and a
    video opened here, before any frame is read: a bad input fails before the work starts."""
    path = Path(src)
    if not path.exists():
        raise LaneSegError(f"{src}: not found")
    if is_bag(path):
        images = islice(iter_images(path, topic), 0, None, every)
        frames = (Frame(f"{src}#{i * every}", str(src), rgb) for i, rgb in enumerate(images))
        return Recorded(islice(frames, limit or None), 0.0)
    if path.is_dir() and any(folder_frames(path, limit=1)):
        return Recorded(folder_frames(path, every, limit), 0.0)
    if path.is_file() and is_video(path):
        video = Video(path)
        frames = (Frame(f"{src}#{i}", str(src), rgb) for i, rgb in video.frames(every, limit))
        return Recorded(frames, video.fps)
    raise LaneSegError(
        f"{src}: give a video ({', '.join(VIDEO_EXTS)}), a folder of images or a rosbag2 "
        "folder (with metadata.yaml)"
    )
