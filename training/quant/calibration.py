"""Which frames quantization sees: a fixed, logged subset of the TRAINING split, never the
frames it is scored on (calibrating on them would flatter the int8 model).

The subset is chosen by a seeded permutation of the train split sorted by id, so the same
(dataset, size, seed) always gives the same frames; its identity (dataset, split, count, seed,
and a sha256 over the chosen image checksums) travels into the report and every ONNX file.
`check_disjoint` refuses an evaluation set that shares any image (by id or content) with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.data.dataset import Sample, load_dataset
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import PreprocessConfig, to_input

CALIB_SPLIT = "train"


@dataclass
class CalibrationSet:
    root: Path
    seed: int
    samples: list[Sample]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def identity(self) -> dict[str, Any]:
        """What the report and the ONNX metadata say about the calibration data."""
        digest = hashlib.sha256()
        for s in self.samples:
            digest.update(str(s.meta.get("image_sha256", s.id)).encode())
        return {
            "dataset": str(self.root),
            "split": CALIB_SPLIT,
            "count": len(self.samples),
            "seed": self.seed,
            "images_sha256": digest.hexdigest(),
            "first_ids": self.ids[:5],
        }

    def inputs(self, cfg: PreprocessConfig) -> Iterator[np.ndarray]:
        """Float32 1x3xHxW inputs through the one preprocessing path."""
        for s in self.samples:
            rgb, _ = s.load()
            yield to_input(rgb, cfg)


def select_calibration(root: str | Path, size: int, seed: int = 0) -> CalibrationSet:
    """`size` frames of the train split of the dataset at `root`, chosen by `seed`."""
    if size < 1:
        raise LaneSegError(f"--calib-size must be at least 1, got {size}")
    ds = load_dataset(root)
    train = sorted(ds.split(CALIB_SPLIT), key=lambda s: s.id)
    if not train:
        raise LaneSegError(
            f"{root} has no '{CALIB_SPLIT}' samples; calibration only uses the training split"
        )
    order = np.random.default_rng(seed).permutation(len(train))[: min(size, len(train))]
    return CalibrationSet(Path(root), seed, [train[i] for i in sorted(order)])


def eval_samples(root: str | Path, split: str, limit: int | None = None) -> list[Sample]:
    """The scored frames: split `split` of `root` (first `limit` by id), never 'train'."""
    if split == CALIB_SPLIT:
        raise LaneSegError(
            "evaluating on the train split would score frames calibration may have seen; "
            "use --split val or --split test"
        )
    samples = sorted(load_dataset(root).split(split), key=lambda s: s.id)
    if not samples:
        raise LaneSegError(f"{root} has no '{split}' samples to evaluate on")
    return samples[:limit] if limit else samples


def _keys(s: Sample) -> set[str]:
    keys = {f"path:{s.image_path.resolve()}"}
    if s.meta.get("image_sha256"):
        keys.add(f"sha:{s.meta['image_sha256']}")
    return keys


def check_disjoint(calib: CalibrationSet, scored: list[Sample]) -> None:
    """Raise if any calibration frame is also a scored frame (same file or same content)."""
    seen = set().union(*(_keys(s) for s in calib.samples))
    clash = [s.id for s in scored if _keys(s) & seen]
    if clash:
        raise LaneSegError(
            f"{len(clash)} evaluation frame(s) are also calibration frames (e.g. {clash[0]}); "
            "calibrate on a different dataset or split"
        )
