"""`lane-seg demo`: a short simulated drive written as frames, masks, a preview and a video."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from lane_seg.cli import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "demo",
        "Drive the built-in simulator's car along a lane and write the camera frames, lane masks, "
        "a preview sheet and an overlay video.",
        "lane-seg demo --out runs/demo --seconds 8",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the drive")
    p.add_argument("--fps", type=float, default=15.0, help="camera rate")
    p.add_argument("--seed", type=int, default=6, help="which random world to drive in")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from lane_seg.dataset import DatasetWriter, encode_image, encode_mask
    from lane_seg.sim.collect import write_preview
    from lane_seg.sim.drive import build_world, drive, nominal_camera
    from lane_seg.sim.scene import SimConfig
    from lane_seg.visualize import overlay

    cfg = SimConfig()
    out = Path(args.out)
    shutil.rmtree(out / "data", ignore_errors=True)  # a demo run starts afresh
    out.mkdir(parents=True, exist_ok=True)
    scene = build_world(args.seed, cfg, length_m=args.seconds * 25.0)
    cam = nominal_camera(cfg)
    video_path = out / "drive.mp4"
    video = cv2.VideoWriter(
        str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (cfg.width, cfg.height)
    )
    params = {"backend": "planar-drive", "seed": args.seed, "fps": args.fps}
    errors, start = [], time.perf_counter()
    with DatasetWriter(out / "data", "lane-seg demo", params) as writer:
        frames = drive(scene, cam, args.seconds, args.fps, seed=args.seed)
        for f in tqdm(frames, total=int(args.seconds * args.fps), unit="frame", desc="drive"):
            writer.add(
                f"drive_s{args.seed}_{f.index:05d}",
                "test",
                "planar-drive",
                encode_image(f.image),
                encode_mask(f.mask),
                camera=cam.to_dict(),
                scene=scene.summary(),
                seed=[args.seed, f.index],
            )
            video.write(cv2.cvtColor(overlay(f.image, f.mask), cv2.COLOR_RGB2BGR))
            errors.append(abs(f.lateral_error_m))
    video.release()
    elapsed = time.perf_counter() - start
    print(
        f"rendered {len(errors)} frames in {elapsed:.1f} s ({len(errors) / elapsed:.1f} frames/s); "
        f"ground-truth driver: mean |lateral error| {np.mean(errors):.3f} m, "
        f"max {np.max(errors):.3f} m"
    )
    print(f"frames and masks: {out / 'data'}")
    print(f"preview:          {write_preview(out / 'data', count=8, cols=4)}")
    print(f"overlay video:    {video_path}")
    return 0
