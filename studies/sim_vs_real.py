"""Contact sheet: simulated frames (with their masks) beside real dashcam frames.

    .venv/bin/python studies/sim_vs_real.py --data data/sim --out runs/sim_vs_real.png

Left column pair: simulator frame and its mask overlay; right column: a real frame at the same
size (TuSimple, CULane night, Udacity), so a person can judge how close the renderer gets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from lane_seg.data.dataset import load_dataset, read_image
from lane_seg.preprocess import PreprocessConfig, resize_image
from lane_seg.visualize import contact_sheet, overlay

REAL_FRAMES = [
    "tusimple_lanenet/image/0000.png",
    "culane_night/02250.jpg",
    "udacity/adv_test_images/test5.jpg",
    "tusimple_clips/01_Lane/10.jpg",
    "udacity/p1_test_images/solidYellowCurve.jpg",
    "tusimple_lanenet/image/0003.png",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="simulator dataset (lane-seg collect)")
    ap.add_argument("--real", default="../shared/data/real", help="real frames folder")
    ap.add_argument("--out", default="runs/sim_vs_real.png")
    args = ap.parse_args()
    cfg = PreprocessConfig()
    samples = load_dataset(args.data).samples
    real = [Path(args.real) / p for p in REAL_FRAMES if (Path(args.real) / p).is_file()]
    tiles = []
    for sample, real_path in zip(samples, real, strict=False):
        image, mask = sample.load()
        tiles += [image, overlay(image, mask), resize_image(read_image(real_path), cfg)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(tiles, cols=3)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"{args.out}: {len(tiles) // 3} rows (simulated, its mask, real)")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
