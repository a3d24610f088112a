"""`crop_top`: the rows a model never sees are cut before the resize and come back as background,
so masks and lane lines stay in the whole frame's coordinates (docs/architecture.md, contract 2)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lane_seg.artifact import ModelInfo
from lane_seg.camera import Camera
from lane_seg.errors import LaneSegError
from lane_seg.models.testing import road_rgb, tiny_info, write_tiny_onnx
from lane_seg.preprocess import (
    PreprocessConfig,
    frame_probability,
    normalize,
    to_input,
    uncropped,
)
from lane_seg.runtime.engines import read_onnx_info
from lane_seg.runtime.segmenter import Segmenter

ROAD_CROP = 0.375  # 270 of 720 rows: 512x160 of the road is 512x256 of the whole frame


def _segmenter(path, **pre) -> Segmenter:
    model = write_tiny_onnx(path, "bright", tiny_info(**pre))
    return Segmenter.load(str(model), "onnxruntime-cpu", threads=1)


def _stripes_frame() -> np.ndarray:
    """A dark 1280x720 frame: a bright vertical stripe (columns 600..679) over its whole height
    and a bright block in the sky (rows 0..199, columns 100..299)."""
    frame = np.full((720, 1280, 3), 30, np.uint8)
    frame[:, 600:680] = 230
    frame[:200, 100:300] = 230
    return frame


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_a_cropping_model_puts_a_known_stripe_back_in_the_whole_frame(tmp_path, resize):
    seg = _segmenter(tmp_path / "m.onnx", height=160, width=512, crop_top=ROAD_CROP, resize=resize)
    mask = seg.segment(_stripes_frame())
    assert mask.shape == (720, 1280)
    cut = round(720 * ROAD_CROP)
    assert not mask[:cut].any()  # the sky block lies in the cut rows: background
    cols = np.flatnonzero(mask[500])
    assert abs(cols.min() - 600) <= 3 and abs(cols.max() - 679) <= 3
    rows = np.flatnonzero(mask[:, 640])
    assert abs(rows.min() - cut) <= 3 and rows.max() == 719


def test_the_same_model_without_the_crop_sees_the_sky(tmp_path):
    seg = _segmenter(tmp_path / "m.onnx", height=256, width=512)
    mask = seg.segment(_stripes_frame())
    assert mask[50:150, 150:250].all() and mask[:, 620:660].all()


def test_crop_top_zero_is_todays_preprocessing():
    """No crop: the input is the frame resized by area and normalised, as before the crop
    existed, and the probabilities cover the frame at the model's scale."""
    frame = np.random.default_rng(0).integers(0, 256, (90, 320, 3), dtype=np.uint8)
    cfg = PreprocessConfig(height=64, width=128, crop_top=0.0)
    reference = normalize(cv2.resize(frame, (128, 64), interpolation=cv2.INTER_AREA), cfg)[None]
    assert np.array_equal(to_input(frame, cfg), reference)
    assert np.array_equal(to_input(frame, PreprocessConfig(height=64, width=128)), reference)
    logits = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    assert frame_probability(logits, (90, 320), cfg).shape == (64, 128)
    assert uncropped(cfg) is cfg


def test_the_cut_rows_are_not_in_the_input():
    """Only the rows below the cut reach the model: the frame's lower 160 rows of 256 are the
    whole 512x160 input."""
    frame = np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8)
    cfg = PreprocessConfig(height=160, width=512, crop_top=ROAD_CROP)
    assert np.array_equal(to_input(frame, cfg), normalize(frame[96:], cfg)[None])
    assert uncropped(cfg) == PreprocessConfig(height=256, width=512)


def test_lane_lines_of_a_cropping_model_are_in_the_frames_pixels(tmp_path):
    cam = Camera.from_fov(1280, 720, 60.0, height_m=1.5, pitch_deg=3.0)
    frame = road_rgb(cam, (1.75, -1.75))
    whole = _segmenter(tmp_path / "whole.onnx", height=256, width=512)
    crop = _segmenter(tmp_path / "crop.onnx", height=160, width=512, crop_top=ROAD_CROP)
    rows = np.arange(420, 700, 20)
    lines = {}
    for name, seg in (("whole", whole), ("crop", crop)):
        _, lanes = seg.segment_lanes(frame, camera=cam)
        lines[name] = {lane.ego: lane.x_at(rows) for lane in lanes if lane.ego}
    assert set(lines["crop"]) == set(lines["whole"]) == {"left", "right"}
    for side in ("left", "right"):
        assert np.nanmax(np.abs(lines["crop"][side] - lines["whole"][side])) <= 3.0
    # and on the true lines: the lane lines are where the camera puts them
    xs = np.geomspace(2.0, 80.0, 400)
    for side, y in (("left", 1.75), ("right", -1.75)):
        uv, _ = cam.project(np.column_stack([xs, np.full_like(xs, y), np.zeros_like(xs)]))
        truth = np.interp(rows, uv[::-1, 1], uv[::-1, 0])
        assert np.nanmax(np.abs(lines["crop"][side] - truth)) <= 4.0


def test_crop_top_travels_in_the_metadata_and_the_onnx_file(tmp_path):
    info = tiny_info(160, 512, crop_top=ROAD_CROP)
    meta = info.to_metadata()
    assert meta["crop_top"] == "0.375"
    assert ModelInfo.from_metadata(meta).preprocess == info.preprocess
    old = {k: v for k, v in meta.items() if k != "crop_top"}  # a model from before the crop
    assert ModelInfo.from_metadata(old).preprocess.crop_top == 0.0
    path = write_tiny_onnx(tmp_path / "m.onnx", "random", info)
    assert read_onnx_info(path).preprocess.crop_top == ROAD_CROP


@pytest.mark.parametrize("value", ["-0.1", "0.95", "1", "nan", "sky"])
def test_a_bad_crop_top_in_a_model_file_is_one_line(value):
    meta = {**tiny_info().to_metadata(), "crop_top": value}
    with pytest.raises(LaneSegError) as err:
        ModelInfo.from_metadata(meta, source="m.onnx")
    assert "m.onnx" in str(err.value) and "\n" not in str(err.value)
    if value != "sky":
        assert "crop_top must be in [0, 0.9]" in str(err.value)


def test_a_bad_crop_top_in_a_training_config_is_one_line():
    from lane_seg.training.train.config import config_from_dict

    raw = {"model": {"name": "unet"}, "data": {"sources": ["d"], "crop_top": 1.2}}
    with pytest.raises(LaneSegError) as err:
        config_from_dict(raw, "c.yaml")
    assert "crop_top" in str(err.value) and "\n" not in str(err.value)
    raw["data"].update(crop_top=ROAD_CROP, height=160)
    assert config_from_dict(raw).preprocess.crop_top == ROAD_CROP
