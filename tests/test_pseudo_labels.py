"""Self-training data (`lane-seg pseudo-label`, training/pseudo_labels.py): the shipped lines
model labels simulator frames whose truth is known, from images and from a video."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lane_seg.artifact import ModelInfo
from lane_seg.cli.main import main
from lane_seg.data.dataset import load_dataset, read_mask, verify_dataset
from lane_seg.lanes.extract import EGO_LEFT, EGO_RIGHT, LaneInstance
from lane_seg.metrics import tolerant_counts
from lane_seg.models import build_model
from lane_seg.models.checkpoint import save_checkpoint
from lane_seg.preprocess import PreprocessConfig
from lane_seg.runtime.shipped_model import default_model
from lane_seg.sim.world.collect import render_frame
from lane_seg.sim.world.scene import SimConfig
from lane_seg.training.pseudo_labels import PseudoConfig, label_lines, pseudo_label
from lane_seg.training.train.data import dataset_labels

SIM = SimConfig(label="lines")  # the shipped model's convention, at its 512x256


def _lane(x: float, conf: float, ego: str | None = None) -> LaneInstance:
    pts = np.array([[x, 120.0], [x, 255.0]])
    return LaneInstance(pts, conf, ego)


def test_a_frame_is_kept_only_when_both_ego_lines_are_sure():
    cfg = PseudoConfig(min_confidence=0.5)
    lanes = [
        _lane(10, 0.9),
        _lane(100, 0.9),
        _lane(200, 0.8, EGO_LEFT),
        _lane(300, 0.7, EGO_RIGHT),
        _lane(400, 0.9),
    ]
    kept = label_lines(lanes, cfg)
    assert [lane.points[0, 0] for lane in kept] == [100, 200, 300, 400]  # one neighbour a side
    unsure = [*lanes[:3], _lane(300, 0.3, EGO_RIGHT), lanes[4]]
    assert label_lines(unsure, cfg) == []
    assert label_lines(lanes[:3], cfg) == []  # no right ego line at all


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Three simulator frames as images and the same frames as a video, with their truth."""
    root = tmp_path_factory.mktemp("unlabelled")
    truths = []
    video = cv2.VideoWriter(
        str(root / "drive.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 256)
    )
    for i in range(3):
        rgb, truth = render_frame(7, i, SIM)[:2]
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(root / f"frame{i}.png"), bgr)
        video.write(bgr)
        truths.append(truth)
    video.release()
    return root, truths


def test_pseudo_labels_follow_the_truth_and_resume(frames, tmp_path):
    root, truths = frames
    out = tmp_path / "pseudo"
    report = pseudo_label(
        default_model("int8"), [str(root / "*.png")], out, engine="onnxruntime-cpu"
    )
    assert report.frames == 3 and report.kept >= 2 and report.already == 0
    ds = load_dataset(out)
    assert verify_dataset(out).ok and dataset_labels(ds.info) == "lines"
    assert {s.split for s in ds} == {"train"}
    for sample in ds:
        i = int(sample.meta["clip"][-5])  # .../frame<i>.png
        mask = read_mask(sample.mask_path)
        assert mask.shape == truths[i].shape
        assert tolerant_counts(mask, truths[i]).scores()["tol_f1"] > 0.7, sample.id
        assert sample.meta["confidence"] >= 0.5
    again = pseudo_label(default_model("int8"), [str(root / "*.png")], out)
    assert again.already == report.kept and again.kept == 0
    params = json.loads((out / "dataset.json").read_text())["params"]
    assert params["model_sha256"] and params["min_confidence"] == 0.5


def test_a_video_is_one_clip_read_every_nth_frame(frames, tmp_path):
    root, _ = frames
    out = tmp_path / "video"
    argv = ["pseudo-label", "--model", str(default_model("int8")), "--out", str(out)]
    assert main([*argv, "--frames", str(root / "*.mp4"), "--video-stride", "2"]) == 0
    ds = load_dataset(out)
    keys = sorted(s.meta["frame_key"] for s in ds)
    assert keys and all(k.endswith(("#0", "#2")) for k in keys)
    assert {s.meta["clip"] for s in ds} == {str(root / "drive.mp4")}


def test_a_bag_is_one_clip_read_like_a_video(frames, tmp_path):
    """A rosbag2 folder among --frames (lane_seg.ros.recorded.glob_frames): its image topic,
    every n-th frame, the bag one clip; the same frames as the images give the same labels."""
    pytest.importorskip("rosbags")
    from lane_seg.models.testing import write_image_bag

    root, _ = frames
    rgbs = [
        cv2.cvtColor(cv2.imread(str(root / f"frame{i}.png")), cv2.COLOR_BGR2RGB) for i in range(3)
    ]
    bag = write_image_bag(tmp_path / "drive_bag", rgbs, "/cam/image_raw", "mcap", "rgb8")
    argv = ["pseudo-label", "--model", str(default_model("int8")), "--engine", "onnxruntime-cpu"]
    out = tmp_path / "bag"
    assert main([*argv, "--frames", str(bag), "--video-stride", "2", "--out", str(out)]) == 0
    ds = load_dataset(out)
    keys = sorted(s.meta["frame_key"] for s in ds)
    assert keys and set(keys) <= {f"{bag}#0", f"{bag}#2"}
    assert {s.meta["clip"] for s in ds} == {str(bag)}
    images = tmp_path / "images"
    assert main([*argv, "--frames", str(root / "frame[02].png"), "--out", str(images)]) == 0
    by_image = {s.meta["frame_key"][-5]: read_mask(s.mask_path) for s in load_dataset(images)}
    for sample in ds:
        i = sample.meta["frame_key"][-1]
        np.testing.assert_array_equal(read_mask(sample.mask_path), by_image[i])


def test_paint_models_and_empty_globs_are_clear_errors(tmp_path, capsys):
    ckpt = tmp_path / "paint.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(32, 64))
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    argv = ["pseudo-label", "--model", str(ckpt), "--frames", str(tmp_path / "*.jpg")]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert "predicts paint labels" in capsys.readouterr().err
    argv = ["pseudo-label", "--model", str(default_model("int8"))]
    assert main([*argv, "--frames", str(tmp_path / "*.jpg"), "--out", str(tmp_path / "b")]) == 2
    assert "matched no file" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing written
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    assert main([*argv, "--frames", str(tmp_path / "x.jpg"), "--out", str(tmp_path / "c")]) == 2
    assert "matched no readable image, video or rosbag2" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # refused before the dataset is made


def test_resuming_with_another_model_is_refused(frames, tmp_path, capsys):
    root, _ = frames
    out = tmp_path / "pseudo"
    pseudo_label(default_model("int8"), [str(root / "frame0.png")], out)
    ckpt = tmp_path / "other.pt"
    info = ModelInfo("unet", {"base": 4, "depth": 2}, PreprocessConfig(256, 512), labels="lines")
    save_checkpoint(ckpt, build_model("unet", base=4, depth=2), info)
    argv = ["pseudo-label", "--model", str(ckpt), "--frames", str(root / "frame0.png")]
    assert main([*argv, "--out", str(out)]) == 2
    assert "different settings (model_sha256)" in capsys.readouterr().err
