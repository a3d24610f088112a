"""Fourier domain adaptation: real frames lend their colour and light, never their geometry."""

import cv2
import numpy as np
import pytest

from lane_seg.errors import LaneSegError
from lane_seg.training.train.augment import AugmentConfig, augment, fourier_style, style_bank


def _style_folder(tmp_path, color):
    for i in range(3):
        img = np.full((120, 200, 3), color, np.uint8)
        img[:, :, 0] = np.clip(color[0] + 10 * i, 0, 255)
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), img[..., ::-1])
    return (str(tmp_path / "*.jpg"),)


def test_style_moves_colour_towards_the_real_frames(tmp_path):
    frames = _style_folder(tmp_path, (200, 120, 40))
    assert len(style_bank(frames, 64, 128)) == 3
    cfg = AugmentConfig(style=1.0, style_frames=frames, style_beta=(0.03, 0.03))
    sim = np.full((64, 128, 3), 60, np.uint8)
    sim[:, 60:64] = 230  # a bright line
    out = fourier_style(sim, np.random.default_rng(0), cfg)
    assert out.shape == sim.shape and out.dtype == np.uint8
    mean = out.reshape(-1, 3).mean(axis=0)
    assert mean[0] > mean[2] + 50  # the real frames' warm cast
    # Edges stay where they were: the line is still the brightest column band.
    gray = out.astype(float).mean(axis=2).mean(axis=0)
    assert 58 <= int(np.argmax(gray)) <= 65


def test_style_never_moves_the_label(tmp_path):
    frames = _style_folder(tmp_path, (30, 60, 200))
    cfg = AugmentConfig.off()
    cfg = AugmentConfig(**{**cfg.__dict__, "style": 1.0, "style_frames": frames})
    mask = np.zeros((64, 128), np.uint8)
    mask[:, 20:24] = 255
    image = np.full((64, 128, 3), 90, np.uint8)
    _, out_mask = augment(image, mask, np.random.default_rng(1), cfg)
    assert np.array_equal(out_mask, mask)


def test_missing_style_frames_are_one_clear_error(tmp_path):
    with pytest.raises(LaneSegError, match="matched no readable frame"):
        style_bank((str(tmp_path / "none" / "*.jpg"),), 64, 128)
