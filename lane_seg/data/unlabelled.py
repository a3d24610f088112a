"""Frames from globs of images and videos: the unlabelled real frames that training borrows
style from (training/train/augment.py) and labels itself (training/pseudo_labels.py)."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


def matched_files(patterns: Sequence[str]) -> list[str]:
    """The files the glob `patterns` match (** recurses), each pattern's in sorted order."""
    return [p for pattern in patterns for p in sorted(glob.glob(pattern, recursive=True))]


def unlabelled_frames(
    patterns: Sequence[str], video_stride: int = 1
) -> Iterator[tuple[str, str, np.ndarray]]:
    """(key, clip, RGB frame) for every image and every `video_stride`-th video frame that the
    glob `patterns` match, in sorted order; a video is one clip, an image its own."""
    for path in matched_files(patterns):
        if path.lower().endswith(VIDEO_SUFFIXES):
            cap = cv2.VideoCapture(path)
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                if i % video_stride == 0:
                    yield f"{path}#{i}", path, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
            cap.release()
            continue
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is not None:
            yield path, path, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
