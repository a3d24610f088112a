"""Which frames quantization sees: one rule for every command that writes an int8 model.

The candidates are a pool of frames: a dataset's TRAIN split (never the frames it is scored on:
calibrating on them would flatter the int8 model), or frames handed over in memory (the
simulator's when a command has no dataset, a user's own camera frames). `choose` sorts the pool
by id and takes a seeded permutation of it: the first `size` frames calibrate, the next ones are
held out for the exporter's int8-vs-fp32 parity check. So the same pool, size and seed always
give the same frames, whichever command exports; the identity of the chosen frames (source,
split, count, seed, a sha256 over the frames) travels into every ONNX file (docs/architecture.md,
contract 2). `check_disjoint` refuses an evaluation set that shares any image with them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.data.dataset import Sample, load_dataset
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PreprocessConfig, to_input

CALIB_SPLIT = "train"
CALIB_SIZE = 64  # the default number of calibration frames of every command
CALIB_SEED = 0  # the default seed of the subset


@dataclass(frozen=True)
class CalibFrame:
    """One candidate frame: its id, a checksum of its pixels, and how to read it (RGB)."""

    id: str
    sha256: str
    read: Callable[[], np.ndarray]
    sample: Sample | None = None  # the dataset row, for frames of a dataset


@dataclass
class CalibrationSet:
    source: str  # the dataset folder, or what the in-memory frames are
    seed: int
    frames: list[CalibFrame]
    held_out: list[CalibFrame]  # the pool's next frames in the same permutation, not calibrated
    split: str = CALIB_SPLIT

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.frames]

    @property
    def samples(self) -> list[Sample]:
        """The dataset rows of the chosen frames (none for in-memory frames)."""
        return [f.sample for f in self.frames if f.sample is not None]

    def identity(self) -> dict[str, Any]:
        """What the report and the ONNX metadata say about the calibration data."""
        digest = hashlib.sha256()
        for f in self.frames:
            digest.update(f.sha256.encode())
        return {
            "dataset": self.source,
            "split": self.split,
            "count": len(self.frames),
            "seed": self.seed,
            "images_sha256": digest.hexdigest(),
            "first_ids": self.ids[:5],
        }

    def inputs(self, cfg: PreprocessConfig) -> Iterator[np.ndarray]:
        """Float32 1x3xHxW inputs through the one preprocessing path."""
        for f in self.frames:
            yield to_input(f.read(), cfg)

    def held_out_inputs(self, cfg: PreprocessConfig, count: int) -> list[np.ndarray]:
        """Up to `count` frames of the pool that calibration did not see, preprocessed."""
        return [to_input(f.read(), cfg) for f in self.held_out[:count]]


def choose(
    pool: Sequence[CalibFrame], size: int, seed: int, source: str, split: str = CALIB_SPLIT
) -> CalibrationSet:
    """The rule: a seeded permutation of the pool sorted by id; the first `size` calibrate (in
    id order), the rest of the permutation is held out."""
    if size < 1:
        raise LaneSegError(f"--calib-size must be at least 1, got {size}")
    if not pool:
        raise LaneSegError(f"{source} has no frames to calibrate on")
    ordered = sorted(pool, key=lambda f: f.id)
    order = np.random.default_rng(seed).permutation(len(ordered))
    chosen = sorted(order[:size])
    return CalibrationSet(
        source, seed, [ordered[i] for i in chosen], [ordered[i] for i in order[size:]], split
    )


def _dataset_frame(s: Sample) -> CalibFrame:
    return CalibFrame(s.id, str(s.meta.get("image_sha256", s.id)), lambda: s.load()[0], s)


def select_calibration(
    root: str | Path, size: int = CALIB_SIZE, seed: int = CALIB_SEED
) -> CalibrationSet:
    """`size` frames of the train split of the dataset at `root`, chosen by `seed`."""
    if size < 1:
        raise LaneSegError(f"--calib-size must be at least 1, got {size}")
    train = load_dataset(root).split(CALIB_SPLIT)
    if not train:
        raise LaneSegError(
            f"{root} has no '{CALIB_SPLIT}' samples; calibration only uses the training split"
        )
    return choose([_dataset_frame(s) for s in train], size, seed, str(root))


def frames_calibration(
    frames: Sequence[tuple[str, np.ndarray]],
    source: str,
    size: int = CALIB_SIZE,
    seed: int = CALIB_SEED,
) -> CalibrationSet:
    """The same rule over (id, RGB frame) pairs held in memory (simulator or camera frames): a
    command's training frames when it has no dataset on disk."""
    pool = [
        CalibFrame(i, hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest(), _get(rgb))
        for i, rgb in frames
    ]
    return choose(pool, size, seed, source)


def _get(rgb: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: rgb


def _keys(s: Sample) -> set[str]:
    keys = {f"path:{s.image_path.resolve()}"}
    if s.meta.get("image_sha256"):
        keys.add(f"sha:{s.meta['image_sha256']}")
    return keys


def check_disjoint(calib: CalibrationSet, scored: list[Sample]) -> None:
    """Raise if any calibration frame is also a scored frame (same file or same content)."""
    seen = set().union(*(_keys(s) for s in calib.samples))
    seen |= {f"sha:{f.sha256}" for f in calib.frames if f.sample is None}
    clash = [s.id for s in scored if _keys(s) & seen]
    if clash:
        raise LaneSegError(
            f"{len(clash)} evaluation frame(s) are also calibration frames (e.g. {clash[0]}); "
            "calibrate on a different dataset or split"
        )
