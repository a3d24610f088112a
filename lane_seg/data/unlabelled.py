"""Frames from globs of images and videos: the unlabelled real frames that training borrows
style from (training/train/augment.py) and labels itself (training/pseudo_labels.py, where
`lane-seg pseudo-label` adds rosbag2 folders through `lane_seg.ros.recorded.glob_frames`)."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence

import numpy as np

from lane_seg.data.frames import file_frames
from lane_seg.errors import LaneSegError


def matched_files(patterns: Sequence[str]) -> list[str]:
    """The files the glob `patterns` match (** recurses), each pattern's in sorted order."""
    return [p for pattern in patterns for p in sorted(glob.glob(pattern, recursive=True))]


def readable_frames(path: str, video_stride: int = 1) -> Iterator[tuple[str, str, np.ndarray]]:
    """(key, clip, RGB frame) of one image or every `video_stride`-th frame of one video;
    nothing when it cannot be read (a folder, another kind of file)."""
    try:
        for frame in file_frames(path, video_stride):
            yield frame.key, frame.clip, frame.rgb
    except LaneSegError:
        return


def unlabelled_frames(
    patterns: Sequence[str], video_stride: int = 1
) -> Iterator[tuple[str, str, np.ndarray]]:
    """(key, clip, RGB frame) for every image and every `video_stride`-th video frame that the
    glob `patterns` match, in sorted order; a video is one clip, an image its own. Files that
    cannot be read are skipped."""
    for path in matched_files(patterns):
        yield from readable_frames(path, video_stride)
