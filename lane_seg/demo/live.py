"""What `lane-seg demo` shows while it runs: one status line a second on the terminal, the same
figures burnt into the overlay video, and the video itself."""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from lane_seg.runtime.infer import video_writer


class LiveStatus:
    """Frames/s over the last two seconds of wall time, and the latest latency."""

    def __init__(self, period_s: float = 1.0, printer=print) -> None:
        self.period_s, self.printer = period_s, printer
        self._done: deque[float] = deque()
        self._last_print = time.monotonic()
        self.frames = 0

    def fps(self) -> float:
        if len(self._done) < 2:
            return 0.0
        return (len(self._done) - 1) / max(self._done[-1] - self._done[0], 1e-6)

    def tick(self, latency_ms: float, extra: str = "") -> str:
        """Count a frame; returns its status text and prints it once per period."""
        now = time.monotonic()
        self.frames += 1
        self._done.append(now)
        while now - self._done[0] > 2.0:
            self._done.popleft()
        lat = f"{latency_ms:5.1f} ms" if math.isfinite(latency_ms) else "   -- ms"
        text = f"{self.fps():5.1f} frames/s | latency {lat}" + (f" | {extra}" if extra else "")
        if self.frames == 1 or now - self._last_print >= self.period_s:
            self._last_print = now
            self.printer(f"[demo] frame {self.frames:5d} | {text}", flush=True)
        return text


class VideoOut:
    """An mp4 whose size is taken from the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if self._writer is None:
            h, w = bgr.shape[:2]
            self._writer = video_writer(self.path, self.fps, (w, h), True)
        self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
