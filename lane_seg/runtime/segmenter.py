"""Frame in, lane mask out: the one path from a camera frame through an engine and back.

Preprocessing and postprocessing go strictly through `lane_seg.preprocess` with the parameters
stored in the model (`ModelInfo.preprocess`), so the CLI, the node, bag replay and the closed
loop all see exactly what training and evaluation saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.preprocess import to_input, to_mask
from lane_seg.runtime.engines import Engine, load_engine
from lane_seg.visualize import overlay


@dataclass
class Timing:
    """Milliseconds spent in each stage of the last `segment` call."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0


class Segmenter:
    def __init__(self, engine: Engine, threshold: float | None = None) -> None:
        self.engine = engine
        self.info = engine.info
        self.threshold = self.info.threshold if threshold is None else float(threshold)
        self.last = Timing()

    @classmethod
    def load(
        cls, model: str, engine: str = "auto", threads: int = 0, threshold: float | None = None
    ) -> Segmenter:
        return cls(load_engine(model, engine, threads), threshold)

    def logits(self, image_rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> logits HxW at the model's input size."""
        t0 = time.perf_counter()
        x = to_input(image_rgb, self.info.preprocess)
        t1 = time.perf_counter()
        out = self.engine.infer(x)
        t2 = time.perf_counter()
        self.last.preprocess_ms = (t1 - t0) * 1e3
        self.last.inference_ms = (t2 - t1) * 1e3
        return out[0, 0]

    def segment(self, image_rgb: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """RGB uint8 HxWx3 -> uint8 mask HxW (0 / 255 = lane) at the frame's own resolution."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected uint8 HxWx3 RGB, got {image_rgb.dtype} {image_rgb.shape}")
        logits = self.logits(image_rgb)
        t0 = time.perf_counter()
        thr = self.threshold if threshold is None else threshold
        mask = to_mask(logits, image_rgb.shape[:2], self.info.preprocess, thr)
        self.last.postprocess_ms = (time.perf_counter() - t0) * 1e3
        return mask


def overlay_bgr(image_rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """RGB frame + mask -> BGR overlay (lane tinted), for video files and the bgr8 overlay topic."""
    return cv2.cvtColor(overlay(image_rgb, mask, alpha=alpha), cv2.COLOR_RGB2BGR)
