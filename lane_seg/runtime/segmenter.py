"""Frame in, lane mask (and lane lines) out: the one path from a camera frame through an engine
and back.

Preprocessing and postprocessing go strictly through `lane_seg.preprocess` with the parameters
stored in the model (`ModelInfo.preprocess`), so the CLI, the node, bag replay and the closed
loop all see exactly what training and evaluation saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.extract import LaneInstance, extract_lanes
from lane_seg.preprocess import (
    PreprocessConfig,
    frame_probability,
    probability_to_mask,
    to_input,
)
from lane_seg.runtime.engines import Engine, load_engine
from lane_seg.visualize import draw_lanes, overlay


@dataclass
class Timing:
    """Milliseconds spent in each stage of the last `segment` call."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    lanes_ms: float = 0.0  # the lane step (0 when not asked for) ...
    lanes_cpu_ms: float = 0.0  # ... and the CPU time this thread spent on it


class Segmenter:
    def __init__(self, engine: Engine, threshold: float | None = None) -> None:
        self.engine = engine
        self.info = engine.info
        self.threshold = self.info.threshold if threshold is None else float(threshold)
        self.last = Timing()
        self._last_frame: tuple = ()  # (probability, frame shape, threshold) for `lanes`

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
        """RGB uint8 HxWx3 -> uint8 mask HxW (0 / 255 = lane) at the frame's own resolution.
        The model's probabilities stay for `lanes` until the next frame."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected uint8 HxWx3 RGB, got {image_rgb.dtype} {image_rgb.shape}")
        logits = self.logits(image_rgb)
        t0 = time.perf_counter()
        thr = self.threshold if threshold is None else threshold
        shape = image_rgb.shape[:2]
        prob = frame_probability(logits, shape, self.info.preprocess)
        mask = probability_to_mask(prob, shape, thr)
        self.last.postprocess_ms = (time.perf_counter() - t0) * 1e3
        self.last.lanes_ms = self.last.lanes_cpu_ms = 0.0
        self._last_frame = (prob, shape, thr)
        return mask

    def lanes(self, camera: Camera | None = None) -> list[LaneInstance]:
        """The lane lines (`lanes_from_probability`) of the frame `segment` saw last, in its
        pixels, timed in `last.lanes_ms`; `camera`: the frame's, when known. A node publishes
        the mask first and then runs this step."""
        t0, c0 = time.perf_counter(), time.thread_time()
        found = lanes_from_probability(*self._last_frame, camera)
        self.last.lanes_cpu_ms = (time.thread_time() - c0) * 1e3
        self.last.lanes_ms = (time.perf_counter() - t0) * 1e3
        return found

    def segment_lanes(
        self, image_rgb: np.ndarray, threshold: float | None = None, camera: Camera | None = None
    ) -> tuple[np.ndarray, list[LaneInstance]]:
        """`segment` and then `lanes`: the mask and the lane lines of one frame."""
        mask = self.segment(image_rgb, threshold)
        return mask, self.lanes(camera)


def lanes_from_logits(
    logits: np.ndarray,
    src_shape: tuple[int, int],
    cfg: PreprocessConfig,
    threshold: float,
    camera: Camera | None = None,
) -> list[LaneInstance]:
    """Lane instances (`lane_seg.lanes.extract`) in a frame of `src_shape` (height, width) from the
    model's logits (`lanes_from_probability`)."""
    return lanes_from_probability(
        frame_probability(logits, src_shape, cfg), src_shape, threshold, camera
    )


def lanes_from_probability(
    prob: np.ndarray, src_shape: tuple[int, int], threshold: float, camera: Camera | None = None
) -> list[LaneInstance]:
    """Lane instances in a frame of `src_shape` (height, width), read from the model's
    probabilities of it at the model's own scale (`preprocess.frame_probability`), where the
    extraction is tuned (not from the mask resampled to the frame), then scaled to the
    frame's pixels."""
    lanes = extract_lanes(prob > threshold, prob, camera)
    size, at = (src_shape[1], src_shape[0]), (prob.shape[1], prob.shape[0])
    return lanes if at == size else [lane.scaled(at, size) for lane in lanes]


def overlay_bgr(
    image_rgb: np.ndarray,
    mask: np.ndarray,
    alpha: float = 0.55,
    lanes: list[LaneInstance] | None = None,
) -> np.ndarray:
    """RGB frame + mask -> BGR overlay (lane tinted, fitted lane lines drawn when given), for
    video files and the bgr8 overlay topic."""
    return cv2.cvtColor(draw_lanes(overlay(image_rgb, mask, alpha=alpha), lanes or []),
                        cv2.COLOR_RGB2BGR)  # fmt: skip
