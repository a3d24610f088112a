"""The frames of `lane-seg bench`: what every engine is timed on, and the calibration frames
when the bench (or `lane-seg models --latency`) has no dataset.

Timing frames are real road frames beside a checkout when present (LANE_SEG_REAL_DATA points
elsewhere), else simulator frames. Calibration frames are the train split of a dataset, else
simulator frames of their own seed; either way chosen by the one rule of
lane_seg.training.quant.calibration, so every command calibrates on the same frames.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from lane_seg import resources
from lane_seg.data.frames import timing_frames
from lane_seg.sim.world.collect import render_frame
from lane_seg.sim.world.scene import SimConfig
from lane_seg.training.quant.calibration import (
    CALIB_SEED,
    CALIB_SIZE,
    CalibrationSet,
    frames_calibration,
    select_calibration,
)
from lane_seg.training.quant.exporter import PARITY_FRAMES

CHECKOUT = resources.checkout_root()
_REAL = os.environ.get("LANE_SEG_REAL_DATA") or (CHECKOUT and CHECKOUT.parent / "shared/data/real")
REAL_FRAMES = Path(_REAL) / "tusimple_lanenet" / "image" if _REAL else None
FRAME_HW = (256, 512)
SIM_FRAME_SEED = 8128  # simulator seed for timing frames when no real ones are present
SIM_CALIB_SEED = 4242  # a different seed for calibration frames when there is no dataset


def load_frames(real_dir: Path | None, count: int = 8) -> tuple[list[np.ndarray], str]:
    """`count` RGB frames at 256x512: real road frames when present, else simulator frames."""
    frames = timing_frames(real_dir, FRAME_HW, count)
    if frames:
        where = os.path.relpath(real_dir, CHECKOUT or Path.cwd())
        return frames, f"real: {len(frames)} frames from {where}"
    return sim_frames(SIM_FRAME_SEED, count), f"simulator: {count} frames, seed {SIM_FRAME_SEED}"


def sim_frames(seed: int, count: int) -> list[np.ndarray]:
    cfg = SimConfig(height=FRAME_HW[0], width=FRAME_HW[1])
    return [render_frame(seed, i, cfg)[0] for i in range(count)]


def calibration_set(
    data: Path | None, size: int = CALIB_SIZE, seed: int = CALIB_SEED
) -> CalibrationSet:
    """The train split of `data`, else a pool of simulator frames (as many as the rule
    calibrates on plus the exporter's held-out parity frames)."""
    if data is not None:
        return select_calibration(data, size, seed)
    return simulator_calibration(size, seed)


@cache  # rendered once per process: `models --latency` calibrates every architecture on them
def simulator_calibration(size: int = CALIB_SIZE, seed: int = CALIB_SEED) -> CalibrationSet:
    frames = sim_frames(SIM_CALIB_SEED, size + PARITY_FRAMES)
    pool = [(f"sim-{SIM_CALIB_SEED}-{i:05d}", rgb) for i, rgb in enumerate(frames)]
    source = f"built-in simulator (render_frame seed {SIM_CALIB_SEED})"
    return frames_calibration(pool, source, size, seed)
