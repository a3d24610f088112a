"""`collect --backend planar`: render random scenes from the built-in simulator into a dataset.

Every frame is a function of (seed, index) alone, so any subset can be rendered in any order,
by any number of worker processes, and a resumed run produces byte-identical files.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask, load_dataset
from lane_seg.sim.world.render import render
from lane_seg.sim.world.scene import (
    Scene,
    SimConfig,
    place_vehicles,
    sample_camera,
    sample_scene,
)
from lane_seg.sim.world.view import Pose, ego_pose
from lane_seg.visualize import contact_sheet, overlay

SOURCE = "planar"
QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def frame_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, index, stream]))


def split_for(seed: int, index: int, val_fraction: float, test_fraction: float) -> str:
    """Split by an independent random stream, so it does not depend on the scene drawn."""
    u = frame_rng(seed, index, stream=1).random()
    if u < val_fraction:
        return "val"
    return "test" if u < val_fraction + test_fraction else "train"


@dataclass(frozen=True)
class RenderedFrame:
    """A frame with what it was rendered from: its scene, camera and the ego's pose there."""

    image: np.ndarray
    mask: np.ndarray
    meta: dict
    scene: Scene
    camera: Camera
    pose: Pose


def render_frame(seed: int, index: int, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """One random scene seen from a random pose in a random lane: (rgb, mask, meta)."""
    f = draw_frame(seed, index, cfg)
    return f.image, f.mask, f.meta


def draw_frame(seed: int, index: int, cfg: SimConfig) -> RenderedFrame:
    """`render_frame`'s frame, with the scene, camera and pose it was rendered from."""
    rng = frame_rng(seed, index)
    scene = sample_scene(rng, cfg)
    cam = sample_camera(rng, cfg)
    s = float(rng.uniform(10.0, scene.road.length - cfg.draw_distance_m - 10.0))
    offset = float(rng.normal(0.0, cfg.ego_offset_sigma_m))
    heading = float(rng.normal(0.0, np.radians(cfg.ego_heading_sigma_deg)))
    place_vehicles(rng, cfg, scene, s)
    pose = ego_pose(scene, s, scene.lane_center(scene.ego_lane) + offset, heading)
    # Drawn only when enabled, so configs without them keep their frames byte for byte.
    distortion = 0.0
    if cfg.distortion_probability and rng.random() < cfg.distortion_probability:
        distortion = float(rng.uniform(*cfg.distortion))
    osd = bool(cfg.osd_probability) and rng.random() < cfg.osd_probability
    image, mask = render(
        scene,
        cam,
        pose,
        rng,
        cfg.draw_distance_m,
        cfg.motion_blur_probability,
        cfg.jpeg_probability,
        label=cfg.label,
        line_width_px=cfg.line_width_px,
        distortion=distortion,
        osd=osd,
        lines_over_hood=cfg.lines_over_hood,
        hood_style=cfg.hood_style(),
    )
    meta = {
        "camera": cam.to_dict(),
        "scene": {
            **scene.summary(),
            "ego_s_m": round(s, 3),
            "ego_offset_m": round(offset, 4),
            "ego_heading_deg": round(float(np.degrees(heading)), 4),
            "curvature_here": round(float(scene.road.curvature_at(s)), 6),
        },
    }
    return RenderedFrame(image, mask, meta, scene, cam, pose)


@dataclass(frozen=True)
class CollectJob:
    seed: int
    cfg: SimConfig
    val_fraction: float
    test_fraction: float

    def sample_id(self, index: int) -> str:
        return f"planar_s{self.seed}_{index:06d}"

    def __call__(self, index: int) -> tuple[int, bytes, bytes, dict[str, Any]]:
        image, mask, meta = render_frame(self.seed, index, self.cfg)
        meta["split"] = split_for(self.seed, index, self.val_fraction, self.test_fraction)
        meta["seed"] = [self.seed, index]
        return index, encode_image(image), encode_mask(mask), meta


def _init_worker(parent: int | None = None) -> None:
    import cv2

    cv2.setNumThreads(1)
    if parent is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        _exit_with(parent)


def _exit_with(parent: int) -> None:
    """A pool worker ends, silently, when its parent dies (killed, even by SIGKILL), instead of
    printing a BrokenPipeError traceback when it hands back its next frame."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.2)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before that took effect
        os._exit(0)


def _results(job: CollectJob, todo: list[int], workers: int) -> Iterator:
    if workers <= 1:
        _init_worker()
        yield from map(job, todo)
        return
    # After a SIGKILL, multiprocessing's resource tracker frees the pool's semaphores and warns
    # that it did: the expected clean-up, nothing to act on. It takes its -W options from here.
    if QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(QUIET_TRACKER)
    pool = mp.get_context("spawn").Pool(workers, _init_worker, (os.getpid(),))
    with pool:
        yield from pool.imap(job, todo, chunksize=4)


def collect_planar(
    out: str | Path,
    frames: int,
    seed: int = 0,
    cfg: SimConfig | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    workers: int = 1,
    progress: bool = False,
) -> int:
    """Write frames 0..frames-1 that are not yet in `out`; returns how many were written."""
    cfg = cfg or SimConfig()
    job = CollectJob(seed, cfg, val_fraction, test_fraction)
    params = {
        "backend": SOURCE,
        "seed": seed,
        "config": cfg.to_dict(),
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
    }
    written = 0
    with DatasetWriter(out, created_by=f"lane-seg collect --backend {SOURCE}", params=params) as w:
        todo = [i for i in range(frames) if job.sample_id(i) not in w]
        results = _results(job, todo, workers)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(todo), unit="frame", desc="collect")
        for index, image, mask, meta in results:
            split = meta.pop("split")
            w.add(job.sample_id(index), split, SOURCE, image, mask, **meta)
            written += 1
    return written


def write_preview(root: str | Path, count: int = 16, cols: int = 4) -> Path:
    """Contact sheet of the first `count` samples: frame above, mask overlay below."""
    import cv2

    dataset = load_dataset(root)
    tiles = []
    for sample in dataset.samples[:count]:
        image, mask = sample.load()
        tiles.append(np.concatenate([image, overlay(image, mask)], axis=0))
    path = Path(root) / "preview.png"
    sheet = contact_sheet(tiles, cols=cols)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path
