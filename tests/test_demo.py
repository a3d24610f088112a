"""`lane-seg demo`: the closed loop over real ROS 2 with its video and summary, and recorded
video / rosbag2 input through the real segmentation node."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("torch")  # the tiny test model is exported from torch

from lane_seg.cli.main import main  # noqa: E402
from lane_seg.models.testing import stripes_rgb, write_image_bag, write_tiny_onnx  # noqa: E402

pytestmark = pytest.mark.ros
ENGINE = ["--engine", "onnxruntime-cpu", "--threads", "1"]


def _video_frames(path) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def test_sim_demo_drives_over_ros_and_writes_its_outputs(tmp_path, capsys):
    model = write_tiny_onnx(tmp_path / "bright.onnx", kind="bright")
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(model), "--seconds", "2.5", "--out", str(out), *ENGINE]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["transport"] == "ros2" and m["command_timeouts"] == 0
    # The bright test model may steer off the road (driving quality is test_ros_loop's job);
    # every frame it saw must have come back from the node and be in the video.
    assert m["frames"] >= 5
    assert m["seg_node"]["processed"] == m["frames"]
    assert len(_video_frames(out / "drive_overlay.mp4")) == m["frames"]
    assert (out / "top_down.png").stat().st_size > 10_000
    assert cv2.imread(str(out / "overlay.jpg")).shape == (256, 512, 3)  # the mid-drive still
    assert "[demo] frame" in printed  # the live line
    for name in ("drive_overlay.mp4", "metrics.json", "summary.md", "top_down.png"):
        assert str(out / name) in printed
    assert "lane keeping: mean |lateral error|" in (out / "summary.md").read_text()


def test_demo_runs_a_video_through_the_node(tmp_path):
    model = write_tiny_onnx(tmp_path / "bright.onnx", kind="bright")
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (256, 128))
    for i in range(12):
        w.write(cv2.cvtColor(stripes_rgb(128, 256, seed=i), cv2.COLOR_RGB2BGR))
    w.release()
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(model), "--input", str(video), "--out", str(out), *ENGINE]
    assert main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["frames"] == 12
    assert s["frames_with_lane_pixels"] == 12  # the bright model sees every stripe frame
    assert 0 < s["latency_ms"]["p50"] <= s["latency_ms"]["p99"]
    frames = _video_frames(out / "overlay.mp4")
    assert len(frames) == 12 and frames[0].shape[:2] == (128, 256)


def test_demo_runs_a_bag_through_the_node(tmp_path):
    model = write_tiny_onnx(tmp_path / "bright.onnx", kind="bright")
    bag = write_image_bag(tmp_path / "drive", [stripes_rgb(64, 128, seed=i) for i in range(5)])
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(model), "--input", str(bag), "--out", str(out), *ENGINE]
    assert main(argv) == 0
    assert json.loads((out / "summary.json").read_text())["frames"] == 5


@pytest.mark.parametrize("name", ["missing.mp4", "notes.txt"])
def test_demo_refuses_input_it_cannot_read(tmp_path, capsys, name):
    if name == "notes.txt":
        (tmp_path / name).write_text("not a video")
    model = write_tiny_onnx(tmp_path / "m.onnx")
    argv = ["demo", "--model", str(model), "--input", str(tmp_path / name), "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "lane-seg demo: error:" in err and name in err


def test_missing_default_model_says_how_to_make_it(tmp_path, monkeypatch):
    from lane_seg import resources
    from lane_seg.errors import LaneSegError
    from lane_seg.runtime import shipped_model as dm

    monkeypatch.setattr(resources, "roots", lambda: [tmp_path])
    with pytest.raises(LaneSegError, match="make model"):
        dm.default_model("int8")
    with pytest.raises(LaneSegError, match="int8, fp32"):
        dm.default_model("int4")
