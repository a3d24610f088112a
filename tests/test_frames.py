"""The one frame reader (lane_seg.data.frames) and its dispatch with bags (lane_seg.ros.recorded):
stride, limit, the declared frame count of a truncated video, and the bad inputs refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lane_seg.data.frames import Video, file_frames, folder_frames, timing_frames, video_info
from lane_seg.errors import LaneSegError
from lane_seg.ros.recorded import recorded_frames


def _video(path, frames: int, fps: float = 12.0) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48), True)
    for i in range(frames):
        w.write(np.full((48, 64, 3), 6 * i % 256, np.uint8))
    w.release()


def test_a_video_with_stride_and_limit(tmp_path):
    path = tmp_path / "clip.mp4"
    _video(path, 10)
    assert video_info(path) == (12.0, 10)
    keys = [f.key for f in file_frames(path, every=3)]
    assert keys == [f"{path}#{i}" for i in (0, 3, 6, 9)]
    frames = list(file_frames(path, every=2, limit=2))
    assert [f.key for f in frames] == [f"{path}#0", f"{path}#2"]
    assert frames[0].clip == str(path) and frames[0].rgb.shape == (48, 64, 3)


def test_a_video_read_whole_is_not_truncated(tmp_path):
    """(The truncated case, with a real video cut short: tests/test_infer_cli.py.)"""
    path = tmp_path / "clip.mp4"
    _video(path, 8)
    video = Video(path)
    assert len(list(video.frames(every=3))) == 3
    assert video.decoded == video.declared == 8 and not video.truncated()


def test_unreadable_files_are_refused_in_one_line(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(LaneSegError, match="bad.mp4: unreadable video"):
        list(file_frames(tmp_path / "bad.mp4"))
    assert video_info(tmp_path / "bad.mp4") == (0.0, 0)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(LaneSegError, match="cannot read image"):
        list(file_frames(tmp_path / "bad.png"))


def test_a_folder_of_images_one_clip_per_sub_folder(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / sub / f"{i}.png"), np.full((8, 16, 3), i, np.uint8))
    (tmp_path / "a" / "1.png").write_bytes(b"broken")  # skipped, not fatal
    frames = list(folder_frames(tmp_path, every=2))
    keys = ("a/0.png", "a/2.png", "b/1.png")  # every other file, in path order
    assert [f.key for f in frames] == [str(tmp_path / p) for p in keys]
    assert [f.clip for f in frames] == [str(tmp_path / c) for c in ("a", "a", "b")]
    assert [f.key for f in folder_frames(tmp_path)][:2] == [str(tmp_path / "a/0.png")] + [
        str(tmp_path / "a/2.png")
    ]
    assert len(list(folder_frames(tmp_path, limit=4))) == 4
    resized = timing_frames(tmp_path / "a", (4, 6), 2)
    assert [f.shape for f in resized] == [(4, 6, 3)] * 2
    assert timing_frames(tmp_path / "none", (4, 6), 2) == []


def test_the_dispatch_takes_videos_and_folders_and_refuses_the_rest(tmp_path):
    _video(tmp_path / "clip.mp4", 6)
    recorded = recorded_frames(tmp_path / "clip.mp4", every=2)
    assert recorded.fps == 12.0 and len(list(recorded.frames)) == 3
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "0.png"), np.zeros((8, 8, 3), np.uint8))
    recorded = recorded_frames(tmp_path / "imgs")
    assert recorded.fps == 0.0 and len(list(recorded.frames)) == 1
    with pytest.raises(LaneSegError, match="nothing.mp4: not found"):
        recorded_frames(tmp_path / "nothing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LaneSegError, match="a folder of images or a rosbag2 folder"):
        recorded_frames(tmp_path / "empty")
