"""Distillation (training/train/distill.py): the teacher's probabilities mapped onto the
student's input geometry (crop_top included), carried through augmentation, a run that moves
the student toward the teacher, and bad settings refused in one line."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from lane_data import draw_scene, make_line_dataset

from lane_seg.errors import LaneSegError
from lane_seg.models.checkpoint import load_model
from lane_seg.models.testing import tiny_info, write_tiny_onnx
from lane_seg.preprocess import PreprocessConfig, frame_probability, resize_image, to_input
from lane_seg.training.train.augment import AugmentConfig, augment
from lane_seg.training.train.config import config_from_dict
from lane_seg.training.train.distill import Teacher
from lane_seg.training.train.trainer import train


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    return make_line_dataset(tmp_path_factory.mktemp("lines") / "ds", n_train=16, n_val=4)


@pytest.fixture(scope="module")
def bright(tmp_path_factory):
    """A teacher that calls every pixel brighter than half scale lane (its own 32x64 input)."""
    path = tmp_path_factory.mktemp("t") / "bright.onnx"
    return write_tiny_onnx(path, "bright", tiny_info(32, 64))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(5)
    for i in range(6):
        image, _ = draw_scene(rng, 96, 192)
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


def _config(data, out, **distill) -> dict:
    return {
        "model": {"name": "unet", "base": 4, "depth": 2},
        "data": {"sources": [{"root": str(data)}], "height": 32, "width": 64},
        "augment": False,
        "loss": {"name": "bce_dice"},
        "optim": {"lr": 0.01, "warmup_steps": 2},
        "train": {"epochs": 4, "batch_size": 4, "seed": 3, "out": str(out), "threads": 1},
        **({"distill": distill} if distill else {}),
    }


def test_soft_mask_is_the_teachers_view_of_the_students_rows(bright):
    """A student that cuts the top half sees the teacher's probabilities of the bottom half:
    the bright bands of the frame, where they are in the student's (cropped, resized) input."""
    rgb = np.full((120, 240, 3), 30, np.uint8)
    rgb[10:30] = 230  # only in the rows the student cuts
    rgb[70:80] = 230
    rgb[100:112, 40:200] = 230
    student = PreprocessConfig(height=24, width=96, crop_top=0.5)
    soft = Teacher(bright).soft_mask(rgb, student)
    assert soft.shape == (24, 96) and soft.dtype == np.uint8
    seen = resize_image(rgb, student).mean(axis=2) > 127  # what the student's input shows
    assert (soft > 127).sum() > 0.1 * soft.size
    assert np.mean((soft > 127) == seen) > 0.95
    # no crop: the teacher's own probabilities at its own size, unchanged
    t_cfg = PreprocessConfig(height=32, width=64)
    teacher = Teacher(bright)
    own = frame_probability(teacher.engine.infer(to_input(rgb, t_cfg))[0, 0], (120, 240), t_cfg)
    np.testing.assert_allclose(teacher.soft_mask(rgb, t_cfg) / 255.0, own, atol=0.5 / 255 + 1e-6)


def test_teacher_channel_moves_with_the_geometry_only():
    """A fourth channel gets the image's geometric warp and none of its colour ops; the RGB
    result and the mask are those of the same draws without it."""
    rng = np.random.default_rng(0)
    image, mask = draw_scene(rng, 64, 128)
    cfg = AugmentConfig(hflip=1.0, rotate_deg=10.0, brightness=0.5, noise=1.0)
    rgb, m3 = augment(image, mask, np.random.default_rng(9), cfg)
    four, m4 = augment(np.dstack([image, mask]), mask, np.random.default_rng(9), cfg)
    np.testing.assert_array_equal(four[..., :3], rgb)
    np.testing.assert_array_equal(m4, m3)
    assert np.mean((four[..., 3] > 127) == (m4 > 127)) > 0.99


def _disagreement(ckpt, teacher, frames) -> float:
    model, info = load_model(ckpt)
    pre = info.preprocess
    gaps = []
    for path in sorted(frames.glob("*.png")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        with torch.no_grad():
            p = torch.sigmoid(model(torch.from_numpy(to_input(rgb, pre))))[0, 0].numpy()
        gaps.append(np.abs(p - teacher.soft_mask(rgb, pre) / 255.0).mean())
    return float(np.mean(gaps))


def test_distillation_moves_the_student_toward_the_teacher(lines, bright, frames, tmp_path):
    """The teacher calls the bright sky lane too, the labels never do: only the distilled run
    learns that, so it ends far closer to the teacher than the same run without it."""
    plain, distilled = tmp_path / "plain", tmp_path / "distilled"
    train(config_from_dict(_config(lines, plain)), progress=False)
    glob = str(frames / "*.png")
    run = train(
        config_from_dict(_config(lines, distilled, teacher=str(bright), weight=5.0, frames=[glob])),
        progress=False,
    )
    assert len(run.real_set) == 6
    teacher = Teacher(bright)
    before = _disagreement(plain / "last.pt", teacher, frames)
    after = _disagreement(distilled / "last.pt", teacher, frames)
    assert after < 0.6 * before, (before, after)
    _, info = load_model(distilled / "last.pt")
    assert "distilled from" in info.train_data


def test_bad_distill_settings_are_refused(lines, tmp_path):
    with pytest.raises(LaneSegError, match="distill: weight"):
        config_from_dict(_config(lines, tmp_path / "o", teacher="t.onnx", weight=-1))
    with pytest.raises(LaneSegError, match="teacher"):
        config_from_dict(_config(lines, tmp_path / "o", weight=1.0))
    with_workers = _config(lines, tmp_path / "o", teacher="t.onnx")
    with_workers["data"]["workers"] = 2
    with pytest.raises(LaneSegError, match="workers: 0"):
        config_from_dict(with_workers)


def test_missing_teacher_is_one_line_and_no_run_folder(lines, tmp_path):
    cfg = tmp_path / "c.yaml"
    out = tmp_path / "run"
    cfg.write_text(yaml.safe_dump(_config(lines, out, teacher=str(tmp_path / "nope.onnx"))))
    r = subprocess.run(
        [sys.executable, "-m", "lane_seg.cli", "train", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "distill.teacher" in err[0] and "nope.onnx" in err[0], r.stderr
    assert not (out / "last.pt").exists()


def test_flip_teacher_averages_the_frame_and_its_mirror(tmp_path):
    """A model that is not mirror-symmetric: the flip teacher's answer on a mirrored frame is
    its answer on the frame, mirrored (so the mirror's answer is put back where it belongs),
    and it differs from the plain teacher's."""
    from lane_seg.models import build_model
    from lane_seg.models.checkpoint import save_checkpoint

    info = tiny_info(32, 64)
    info.arch, info.model_config = "unet", {"base": 4, "depth": 2}
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "t.pt", build_model("unet", **info.model_config), info)
    rgb, _ = draw_scene(np.random.default_rng(2), 96, 192)
    plain, flip = Teacher(tmp_path / "t.pt"), Teacher(tmp_path / "t.pt", flip=True)
    p, q = flip.probability(rgb), flip.probability(np.ascontiguousarray(rgb[:, ::-1]))
    assert np.allclose(q, p[:, ::-1], atol=1e-5)
    mean = 0.5 * (plain.probability(rgb) + plain.probability(rgb[:, ::-1].copy())[:, ::-1])
    assert np.allclose(p, mean, atol=1e-6)
    assert np.abs(p - plain.probability(rgb)).max() > 1e-4
