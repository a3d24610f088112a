"""How `lane-seg bench` measures: interleaved timing rounds and peak resident memory.

Why the timing is interleaved: the machine is shared, so its load drifts over a run. Timing
engine A for a minute and then engine B would charge the drift to one of them. Instead every
round times every engine (in a rotated order), and the percentiles pool all rounds.

Peak memory: native runtimes allocate outside Python's allocator, so tracemalloc sees nothing.
We read the kernel's resident-set high-water mark (VmHWM in /proc/self/status) and reset it
between measurements by writing "5" to /proc/self/clear_refs (Linux >= 4.0). Per engine: the
peak RSS growth while loading it and running its first inference ("load"), and the peak RSS
above the pre-run RSS during its timed inferences ("infer"). Where clear_refs is not writable the
high-water mark cannot be reset and the method string says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lane_seg.runtime.engines import Engine
from lane_seg.runtime.timing import time_calls

# ---------------------------------------------------------------- memory


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """Peak resident-set growth (MiB) over a block of code."""

    def __init__(self) -> None:
        self.reset_ok = _reset_hwm()
        self.start_kb = _status_kb("VmRSS") or 0

    @property
    def method(self) -> str:
        if self.reset_ok:
            return (
                "VmHWM (reset via /proc/self/clear_refs) minus VmRSS before; infer peak 0 = the "
                "timed runs allocated nothing beyond loading and the first run"
            )
        return "VmHWM minus VmRSS before (HWM not resettable: upper bound of process peak)"

    def growth_mb(self) -> float:
        hwm = _status_kb("VmHWM")
        if hwm is None:
            return float("nan")
        # The reset sets VmHWM to the RSS read just after it; pages freed in between would
        # read as a small negative growth.
        return max(0, hwm - self.start_kb) / 1024.0


@dataclass
class Runner:
    """One engine under test, with what its row reports."""

    name: str
    runtime: str
    precision: str
    file: Path
    provider: str
    engine: Engine
    load_s: float
    load_peak_mb: float
    note: str = ""
    gpu: bool = False  # runs on a GPU: no CPU peak to compare with
    times_ms: list[float] = field(default_factory=list)
    infer_peak_mb: float = 0.0


def timed_load(
    make: Callable[[], tuple[Engine, str]], x: np.ndarray
) -> tuple[tuple[Engine, str], float, float]:
    """(engine, provider), load seconds, peak RSS growth over load + one inference."""
    mem = PeakRss()
    t0 = time.perf_counter()
    engine, provider = make()
    engine.infer(x)
    return (engine, provider), time.perf_counter() - t0, mem.growth_mb()


def time_rounds(
    runners: list[Runner], inputs: list[np.ndarray], rounds: int, iters: int, warmup: int
) -> None:
    """Warm every engine, then `rounds` rounds in which every engine runs `iters` timed calls."""
    for r in runners:
        time_calls(r.engine.infer, inputs, runs=0, warmup=warmup)
    for k in range(rounds):
        order = runners[k % len(runners) :] + runners[: k % len(runners)]
        for r in order:
            mem = PeakRss()
            r.times_ms += time_calls(r.engine.infer, inputs, runs=iters, start=k * iters)
            r.infer_peak_mb = max(r.infer_peak_mb, mem.growth_mb())
