"""Accuracy of a model on labelled frames: the one scoring loop behind `lane-seg eval`,
`lane-seg bench` and `lane-seg quantize`, so the three agree on the same model and frames.

Every frame: its preprocessed input through the engine (`Engine.infer`, lane_seg.runtime.engines)
-> logits -> `preprocess.to_mask` at the label's own resolution with the model's threshold (0.5)
-> pixel confusion counts against the label (lane_seg.metrics). Scores come from the counts
summed over all frames (micro average): lane IoU, Dice and mIoU (mean of lane and background
IoU), the same definitions everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lane_seg.data.dataset import Sample, load_dataset
from lane_seg.errors import LaneSegError
from lane_seg.metrics import Counts, confusion
from lane_seg.preprocess import PreprocessConfig, to_input, to_mask
from lane_seg.runtime.engines import Engine


def scored_samples(root: str | Path, split: str, limit: int | None = None) -> list[Sample]:
    """The scored frames of `bench` and `quantize`: split `split` of `root` (the first `limit`
    by id), never 'train', whose frames calibration draws from."""
    if split == "train":
        raise LaneSegError(
            "evaluating on the train split would score frames calibration may have seen; "
            "use --split val or --split test"
        )
    samples = sorted(load_dataset(root).split(split), key=lambda s: s.id)
    if not samples:
        raise LaneSegError(f"{root} has no '{split}' samples to evaluate on")
    return samples[:limit] if limit else samples


@dataclass
class EvalFrames:
    """Preprocessed inputs and their labels, loaded once and shared by every engine scored."""

    inputs: list[np.ndarray]
    masks: list[np.ndarray]
    ids: list[str]

    @classmethod
    def load(cls, samples: list[Sample], cfg: PreprocessConfig) -> EvalFrames:
        inputs, masks = [], []
        for s in samples:
            rgb, mask = s.load()
            inputs.append(to_input(rgb, cfg))
            masks.append(mask)
        return cls(inputs, masks, [s.id for s in samples])

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        return iter(zip(self.ids, self.inputs, self.masks, strict=True))


def predict_mask(engine: Engine, x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """0/255 mask at `shape` (the label's size) for one preprocessed input."""
    return predict(engine, x, shape)[0]


def predict(engine: Engine, x: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(`predict_mask`'s mask, the logits it came from) for one preprocessed input."""
    info = engine.info
    logits = engine.infer(x)[0, 0]
    return to_mask(logits, shape, info.preprocess, info.threshold), logits


def frame_counts(
    engine: Engine, frames: Iterable[tuple[str, np.ndarray, np.ndarray]]
) -> Iterator[tuple[str, np.ndarray, Counts]]:
    """(id, predicted mask, confusion counts) for each (id, input, label)."""
    for frame_id, x, label in frames:
        pred = predict_mask(engine, x, label.shape[:2])
        yield frame_id, pred, confusion(pred, label)


@dataclass
class Accuracy:
    """Micro-averaged scores in percent."""

    lane_iou: float
    dice: float
    miou: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score(engine: Engine, frames: EvalFrames) -> Accuracy:
    total = Counts()
    for _, _, counts in frame_counts(engine, frames):
        total = total + counts
    sc = total.scores()
    return Accuracy(100 * sc["lane_iou"], 100 * sc["dice"], 100 * sc["miou"], len(frames.ids))
