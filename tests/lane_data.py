"""Small synthetic lane datasets for tests: drawn road scenes written with DatasetWriter.

A grey road with texture noise, 2-3 painted lines converging toward a vanishing point, and the
exact mask of those lines. Small enough to train on in seconds, structured enough that a model
has to learn something (line colour and shape, not a fixed position).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask


def draw_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    sky = int(height * rng.uniform(0.3, 0.45))
    image = np.empty((height, width, 3), np.uint8)
    image[:sky] = rng.integers(120, 200, size=3)
    road = rng.integers(50, 110)
    image[sky:] = road
    noise = rng.normal(0, 6, size=(height - sky, width, 1))
    image[sky:] = np.clip(image[sky:].astype(np.float32) + noise, 0, 255).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    vx = width * rng.uniform(0.35, 0.65)
    colour = (235, 235, 235) if rng.random() < 0.7 else (230, 200, 40)
    n_lines = int(rng.integers(2, 4))
    bottoms = np.sort(rng.uniform(-0.2, 1.2, size=n_lines)) * width
    thick = max(1, width // 60)
    for bx in bottoms:
        p0, p1 = (int(vx), sky), (int(bx), height - 1)
        cv2.line(image, p0, p1, colour, thick)
        cv2.line(mask, p0, p1, 255, thick)
    return image, mask


def make_line_dataset(
    root: Path, n_train: int = 24, n_val: int = 8, height: int = 64, width: int = 128, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, "tests/lane_data.py", {"seed": seed, "h": height, "w": width}) as w:
        for i in range(n_train + n_val):
            image, mask = draw_scene(rng, height, width)
            split = "train" if i < n_train else "val"
            w.add(f"f{i:04d}", split, "synthetic", encode_image(image), encode_mask(mask))
    return root
