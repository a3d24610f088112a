"""How every latency of a model is measured: untimed warm-up calls, then timed calls.

One loop for `engine=auto`'s choice, `lane-seg bench` (its interleaved rounds call it once per
engine and round), `lane-seg quantize`, `lane-seg models --latency` and the node benchmark's
bare engine times, so their figures mean the same thing: wall-clock milliseconds per call of
`fn(input)` at batch 1, inputs taken in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def time_calls(
    fn: Callable[[Any], Any], inputs: Sequence[Any], runs: int, warmup: int = 0, start: int = 0
) -> list[float]:
    """`warmup` untimed calls, then milliseconds for each of `runs` calls; the inputs are used in
    turn from index `start`."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    times = []
    for i in range(start, start + runs):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def percentile(times_ms: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(times_ms), q)) if len(times_ms) else float("nan")


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    fps: float  # 1000 / mean: sequential calls at batch 1
    runs: int

    @classmethod
    def of(cls, times_ms: Sequence[float]) -> Latency:
        mean = float(np.mean(times_ms))
        return cls(
            percentile(times_ms, 50),
            percentile(times_ms, 95),
            percentile(times_ms, 99),
            mean,
            1e3 / mean,
            len(times_ms),
        )
