"""`model=auto`: the most accurate shipped model that meets the latency budget on this machine.

One rule for the node, `lane-seg infer` and `lane-seg sim` (docs/architecture.md, contract 3):

- The candidates are the shipped int8 models (`shipped_model.shipped_int8`: models/shipped.json,
  each file with its mean real-frame F1 within 8 px).
- Each one's latency on this machine is the start-up timing `engine=auto` does anyway (the
  median ms of the engine it keeps, `Engine.auto_timings`); with a named engine, the same few
  timed calls (`engines.time_engine`).
- The most accurate model within the budget wins (equal accuracy: the faster); when none is
  within it, the fastest, with a warning.
- The budget is `latency_budget_ms` when given (> 0), else the camera's frame period when
  known, else 33 ms (30 fps).

An explicit model path bypasses all of it: that model is loaded as asked, nothing is timed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lane_seg.errors import LaneSegError
from lane_seg.runtime.engines import Engine, load_engine, time_engine
from lane_seg.runtime.shipped_model import shipped_int8

AUTO = "auto"
DEFAULT_BUDGET_MS = 33.0  # a 30 fps camera's period


def is_auto(model: str | Path | None) -> bool:
    """Whether `model` asks for the pick (`auto`, or no model given)."""
    return not model or str(model) == AUTO


def latency_budget(budget_ms: float = 0.0, camera_fps: float = 0.0) -> float:
    """The budget in ms: `budget_ms` when > 0, else the period of a camera of `camera_fps` when
    > 0, else DEFAULT_BUDGET_MS."""
    if budget_ms < 0 or camera_fps < 0:
        raise LaneSegError(
            f"the latency budget ({budget_ms:g} ms) and the camera rate ({camera_fps:g} fps) "
            "must be >= 0 (0 = not given)"
        )
    if budget_ms > 0:
        return float(budget_ms)
    return 1000.0 / camera_fps if camera_fps > 0 else DEFAULT_BUDGET_MS


@dataclass(frozen=True)
class Candidate:
    name: str  # the model file's name
    accuracy: float  # mean real-frame F1 within 8 px, %
    latency_ms: float  # median ms per frame on this machine


@dataclass(frozen=True)
class Pick:
    """The chosen model and the figures behind the choice."""

    chosen: Candidate
    candidates: tuple[Candidate, ...]
    budget_ms: float

    @property
    def fits(self) -> bool:
        return self.chosen.latency_ms <= self.budget_ms

    def figures(self) -> str:
        """Every candidate: accuracy and latency, e.g. `a.onnx F1 71.4 % 28.1 ms`."""
        return ", ".join(
            f"{c.name} F1 {c.accuracy:.1f} % {c.latency_ms:.1f} ms" for c in self.candidates
        )

    def describe(self) -> str:
        """One line for logs and /diagnostics."""
        verdict = "within" if self.fits else "over"
        return (
            f"model auto: {self.chosen.name} ({self.chosen.latency_ms:.1f} ms, {verdict} the "
            f"{self.budget_ms:.1f} ms budget) of {self.figures()}"
        )

    def warning(self) -> str | None:
        """What to do when no model meets the budget; None when the pick does."""
        if self.fits:
            return None
        return (
            f"no shipped model meets the {self.budget_ms:.1f} ms budget on this machine; "
            f"running the fastest, {self.chosen.name} at {self.chosen.latency_ms:.1f} ms "
            "(raise latency_budget_ms, lower the camera rate, or give a model)"
        )


def choose(candidates: Sequence[Candidate], budget_ms: float) -> Pick:
    """The pick rule (the module docstring) on measured candidates."""
    if not candidates:
        raise LaneSegError("no shipped model to choose from (models/shipped.json lists none)")
    fitting = [c for c in candidates if c.latency_ms <= budget_ms]
    if fitting:
        chosen = max(fitting, key=lambda c: (c.accuracy, -c.latency_ms))
    else:
        chosen = min(candidates, key=lambda c: c.latency_ms)
    return Pick(chosen, tuple(candidates), budget_ms)


def engine_latency(engine: Engine) -> float:
    """Median ms per frame of a loaded engine: `engine=auto`'s own timing when it made one."""
    if engine.name in engine.auto_timings:
        return engine.auto_timings[engine.name]
    return statistics.median(time_engine(engine))


def load_model(
    model: str | Path | None,
    engine: str = "auto",
    threads: int = 0,
    budget_ms: float = DEFAULT_BUDGET_MS,
) -> tuple[Engine, Pick | None]:
    """The engine of `model`, or for `auto` (or none) the engine of the pick among the shipped
    models, with the pick itself."""
    if not is_auto(model):
        return load_engine(model, engine, threads), None
    engines: dict[str, Engine] = {}
    candidates = []
    for entry in shipped_int8():
        eng = load_engine(entry.path, engine, threads)
        candidates.append(Candidate(entry.path.name, entry.real_f1, engine_latency(eng)))
        engines[entry.path.name] = eng
    pick = choose(candidates, budget_ms)
    return engines[pick.chosen.name], pick
