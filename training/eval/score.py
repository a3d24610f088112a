"""Accuracy and latency of any predictor (PyTorch module or onnxruntime session), measured the
same way for every row of the quantization report.

Accuracy: logits -> mask through lane_seg.preprocess.to_mask (probability 0.5, at the frame's
own resolution) against the labelled mask; lane_seg.metrics confusion counts summed over all
frames, then lane IoU, Dice and mIoU (mean of lane and background IoU), in percent - the same
definitions as `lane-seg eval`.
Latency: batch 1, warm-up first, then p50/p95 over timed runs; frames/s = 1000 / mean ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from lane_seg.dataset import Sample
from lane_seg.metrics import Counts, confusion
from lane_seg.preprocess import PROB_THRESHOLD, PreprocessConfig, to_input, to_mask

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalFrames:
    """Preprocessed inputs and their labels, loaded once and shared by every row."""

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


@dataclass
class Accuracy:
    lane_iou: float
    dice: float
    miou: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def scores(c: Counts, frames: int) -> Accuracy:
    sc = c.scores()
    return Accuracy(100 * sc["lane_iou"], 100 * sc["dice"], 100 * sc["miou"], frames)


def evaluate(
    predict: Predictor, frames: EvalFrames, cfg: PreprocessConfig, threshold: float = PROB_THRESHOLD
) -> Accuracy:
    """Micro-averaged scores, computed exactly as `lane-seg eval` does (lane_seg.metrics)."""
    total = Counts()
    for x, gt in zip(frames.inputs, frames.masks, strict=True):
        logits = predict(x)
        total = total + confusion(to_mask(logits[0, 0], gt.shape[:2], cfg, threshold), gt)
    return scores(total, len(frames.inputs))


def torch_predictor(model: torch.nn.Module) -> Predictor:
    """model.eval() + torch.inference_mode() for every call (LESSONS.md)."""
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).float().numpy()

    return predict


def ort_predictor(session: Any) -> Predictor:
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return predict


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    fps: float
    runs: int
    warmup: int


def benchmark(predict: Predictor, x: np.ndarray, runs: int = 30, warmup: int = 5) -> Latency:
    """Batch-1 wall-clock latency of `predict(x)` after `warmup` untimed calls."""
    for _ in range(warmup):
        predict(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predict(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    t = np.asarray(times)
    mean = float(t.mean())
    return Latency(
        float(np.percentile(t, 50)), float(np.percentile(t, 95)), mean, 1000.0 / mean, runs, warmup
    )
