"""Distillation: a trained model's probabilities as soft labels for another model.

The teacher (an .onnx or .pt model file) runs on the whole frame through the one preprocessing
path at its own size and crop (`preprocess.to_input`); its logits become the whole frame's
probabilities (`preprocess.frame_probability`, rows it cut put back as 0) and are then cut,
resized and placed exactly as the student's input frame is (`preprocess.resize_probability`),
so a student with another size or `crop_top` learns from the teacher's view of the same rows
(docs/architecture.md, contract 2). Probabilities are kept as uint8 (1/255 steps) beside the
frame, so that augmentations move them with the image as a fourth channel
(training/train/augment.py).

Two uses in one run (training/train/trainer.py): the simulator frames carry the teacher's soft
mask besides their label (BCE + Dice on the label, `weight` x BCE on the teacher), and the
unlabelled real frames of `distill.frames` carry the teacher's only, which needs no labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lane_seg.data.unlabelled import unlabelled_frames
from lane_seg.errors import LaneSegError
from lane_seg.preprocess import (
    PreprocessConfig,
    frame_probability,
    normalize,
    resize_image,
    resize_probability,
    to_input,
)
from lane_seg.runtime.engines import Engine, baseline_engine, load_engine
from lane_seg.training.train.augment import AugmentConfig, augment


class Teacher:
    """A model file on its baseline engine (onnxruntime CPU for ONNX, torch for checkpoints)."""

    def __init__(self, path: str | Path, threads: int = 0, flip: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise LaneSegError(f"distill.teacher {path} is not a model file (.onnx or .pt)")
        try:
            self.engine: Engine = load_engine(path, baseline_engine(path), threads)
        except LaneSegError as exc:
            raise LaneSegError(f"distill.teacher: {exc}") from None
        self.path, self.flip = path, flip

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """The whole frame's lane probability at the teacher's scale; with `flip`, the mean of
        it and of the mirrored frame's, mirrored back (test-time augmentation: a steadier
        teacher than the student it starts as)."""
        cfg = self.engine.info.preprocess
        prob = frame_probability(self.engine.infer(to_input(rgb, cfg))[0, 0], rgb.shape[:2], cfg)
        if not self.flip:
            return prob
        mirror = np.ascontiguousarray(rgb[:, ::-1])
        logits = self.engine.infer(to_input(mirror, cfg))[0, 0]
        return 0.5 * (prob + frame_probability(logits, rgb.shape[:2], cfg)[:, ::-1])

    def soft_mask(self, rgb: np.ndarray, student: PreprocessConfig) -> np.ndarray:
        """RGB uint8 whole frame -> the teacher's lane probability in the student's input
        geometry, uint8 0..255."""
        prob = resize_probability(self.probability(rgb), student)
        return np.rint(np.clip(prob, 0.0, 1.0) * 255.0).astype(np.uint8)


def augmented_pair(
    image: np.ndarray,
    mask: np.ndarray,
    soft: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig | None,
    pre: PreprocessConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input, 0/1 label, teacher probability) tensors, the teacher's moved with the image."""
    if cfg is not None:
        stacked, mask = augment(np.dstack([image, soft]), mask, rng, cfg)
        image, soft = stacked[..., :3], stacked[..., 3]
    x = torch.from_numpy(normalize(np.ascontiguousarray(image), pre))
    y = torch.from_numpy((mask > 127).astype(np.float32))[None]
    t = torch.from_numpy(soft.astype(np.float32) * (1.0 / 255.0))[None]
    return x, y, t


class TeacherFrames(Dataset):
    """Unlabelled frames (globs of images and videos) at the student's input size, each with
    the teacher's probabilities; all of them are read and labelled once, at the start."""

    def __init__(
        self,
        patterns: tuple[str, ...],
        teacher: Teacher,
        pre: PreprocessConfig,
        augment_cfg: AugmentConfig | None,
        seed: int = 0,
        video_stride: int = 1,
    ) -> None:
        self.pre, self.augment_cfg, self.seed, self.epoch = pre, augment_cfg, seed, 0
        self.frames: list[tuple[np.ndarray, np.ndarray]] = [
            (resize_image(rgb, pre), teacher.soft_mask(rgb, pre))
            for _, _, rgb in unlabelled_frames(patterns, video_stride)
        ]
        if not self.frames:
            raise LaneSegError(f"distill.frames {list(patterns)} matched no readable frame")
        print(
            f"distill: {len(self.frames)} unlabelled frames labelled by {teacher.path}",
            file=sys.stderr,
        )

    def __len__(self) -> int:
        return len(self.frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, soft = self.frames[index]
        rng = np.random.default_rng((self.seed, self.epoch, index, 1))
        empty = np.zeros(soft.shape, np.uint8)
        x, _, t = augmented_pair(image, empty, soft, rng, self.augment_cfg, self.pre)
        return x, t
