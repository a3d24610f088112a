"""Counters and latency windows of the segmentation node (no ROS import, unit-testable).

Each counter is written by one thread only (received/bad/dropped by the subscription callback,
lost by it and its message-lost event, both on the executor's thread, processed/errors by the
worker), so plain integers are safe under the GIL; readers (the diagnostics timer, tests) only
read them.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

WINDOW = 300  # frames kept for the latency percentiles
LOSS_WARN = 0.2  # share of frames lost on the way over a diagnostics period that warns
BAD_WARN = 0.5  # share of a period's messages that were bad input that warns


class NodeStats:
    def __init__(self, window: int = WINDOW) -> None:
        self.received = 0  # messages that reached the callback
        self.bad_inputs = 0  # messages that could not be a frame (counted, logged, skipped)
        self.dropped = 0  # good frames replaced in the one-slot buffer by a newer one
        self.lost = 0  # messages sent to the node that never reached the callback (CameraInput)
        self.processed = 0  # masks published
        self.errors = 0  # frames whose inference or publishing raised
        self.overlays = 0  # overlays computed (only while ~/overlay has a subscriber)
        self.last_bad_reason = ""
        self._lock = threading.Lock()
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._inference_ms: deque[float] = deque(maxlen=window)
        self._lanes_ms: deque[float] = deque(maxlen=window)
        self._done_at: deque[float] = deque(maxlen=window)
        self._seen = (0, 0)  # (received, lost) at the last loss_since_last()
        self._seen_bad = (0, 0)  # (received, bad_inputs) at the last bad_since_last()

    def frame_done(self, latency_ms: float, inference_ms: float) -> None:
        with self._lock:
            self.processed += 1
            self._latency_ms.append(latency_ms)
            self._inference_ms.append(inference_ms)
            self._done_at.append(time.monotonic())

    def loss_since_last(self) -> float:
        """Share of the frames sent since the last call that were lost in transport."""
        received, lost = self.received - self._seen[0], self.lost - self._seen[1]
        self._seen = (self.received, self.lost)
        return lost / (received + lost) if lost > 0 else 0.0

    def bad_since_last(self) -> float:
        """Share of the messages received since the last call that were bad input."""
        received, bad = self.received - self._seen_bad[0], self.bad_inputs - self._seen_bad[1]
        self._seen_bad = (self.received, self.bad_inputs)
        return bad / received if received > 0 else 0.0

    def lanes_done(self, lanes_ms: float) -> None:
        """The lane step of a frame (after its mask and lane centre went out)."""
        with self._lock:
            self._lanes_ms.append(lanes_ms)

    def snapshot(self, horizon_s: float = 5.0) -> dict[str, float]:
        """Counters plus fps over the last `horizon_s` and latency percentiles over the window."""
        with self._lock:
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            inf = np.asarray(self._inference_ms, dtype=np.float64)
            lanes = np.asarray(self._lanes_ms, dtype=np.float64)
            now = time.monotonic()
            recent = [t for t in self._done_at if now - t <= horizon_s]
        fps = 0.0
        if len(recent) >= 2:
            span = max(now - recent[0], 1e-6)
            fps = (len(recent) - 1) / span if span > 0 else 0.0

        def pct(a: np.ndarray, q: float) -> float:
            return float(np.percentile(a, q)) if a.size else float("nan")

        return {
            "fps": fps,
            "latency_ms_p50": pct(lat, 50),
            "latency_ms_p99": pct(lat, 99),
            "inference_ms_p50": pct(inf, 50),
            "lanes_ms_p50": pct(lanes, 50),  # the lane step (NaN with lanes off)
            "received": self.received,
            "processed": self.processed,
            "dropped": self.dropped,
            "lost": self.lost,
            "bad_inputs": self.bad_inputs,
            "errors": self.errors,
            "overlays": self.overlays,
        }


class SequenceGaps:
    """Messages a subscription never got, from the gaps in each publisher's sequence numbers
    (rclpy's MessageInfo `publication_sequence_number`, None where the rmw does not number
    messages). Frames the middleware replaced in a full queue show here and nowhere else. A
    publisher's first message starts its count: what it sent before was not sent to us."""

    def __init__(self) -> None:
        self.missed = 0
        self._last: dict[bytes, int] = {}  # publisher gid -> its last sequence number seen

    def see(self, info: dict) -> None:
        seq = info.get("publication_sequence_number")
        if seq is None:
            return
        gid = bytes(info["publisher_gid"]["data"])
        last = self._last.get(gid)
        if last is not None and seq > last + 1:
            self.missed += seq - last - 1
        if last is None or seq > last:
            self._last[gid] = seq
