"""What a model's lane lines on unlabelled frames say about it, without any label.

- `both_ego`: the share of frames in which both ego lines are found (`lane_seg.lanes.extract`).
- `confidence`: the mean confidence of the ego lines found.
- `jitter_px`: how far an ego line moves between consecutive frames of one clip, in pixels of
  the frames it was found in, averaged over rows in the lower half of the frame (where the
  line is near the car and the road moves least from frame to frame), over both ego lines and
  every pair of frames where the line is found in both. A steadier line is a surer one; on
  frames far apart (a folder of unrelated images) the figure says little, which is why the
  pairs are taken within a clip only. `jitter_median_px` is the median over those pairs: one
  jump to another line does not move it.
- `lines`: lane lines per frame.

None of these is accuracy: a model can be steadily wrong. They are what `lane-seg adapt` can
show before and after on a camera nobody labelled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lane_seg.lanes.extract import LaneInstance, ego_lines

JITTER_ROWS = np.linspace(0.6, 0.95, 8)  # rows as shares of the frame height


@dataclass
class LineFigures:
    frames: int
    both_ego: float
    confidence: float
    jitter_px: float | None  # None: no two consecutive frames of a clip with the same line
    lines: float
    jitter_median_px: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _shift(a: LaneInstance | None, b: LaneInstance | None, rows: np.ndarray) -> float | None:
    if a is None or b is None:
        return None
    dx = np.abs(a.x_at(rows) - b.x_at(rows))
    dx = dx[np.isfinite(dx)]
    return float(dx.mean()) if dx.size else None


def line_figures(
    lanes_of: Callable[[np.ndarray], list[LaneInstance]],
    frames: Sequence[np.ndarray],
    clips: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> LineFigures:
    """The figures of the lines `lanes_of` finds in each of `frames` (RGB, one size),
    consecutive frames of the same clip compared for the jitter."""
    both = lines = 0
    conf: list[float] = []
    shifts: list[float] = []
    previous: tuple[str, tuple[LaneInstance | None, LaneInstance | None]] | None = None
    for frame, clip in zip(frames, clips, strict=True):
        lanes = lanes_of(frame)
        ego = ego_lines(lanes)
        lines += len(lanes)
        both += all(line is not None for line in ego)
        conf += [line.confidence for line in ego if line is not None]
        if previous is not None and previous[0] == clip:
            rows = JITTER_ROWS * frame.shape[0]
            for a, b in zip(previous[1], ego, strict=True):
                shift = _shift(a, b, rows)
                if shift is not None:
                    shifts.append(shift)
        previous = (clip, ego)
        if progress is not None:
            progress(1)
    n = len(frames)
    return LineFigures(
        frames=n,
        both_ego=both / n if n else 0.0,
        confidence=float(np.mean(conf)) if conf else 0.0,
        jitter_px=float(np.mean(shifts)) if shifts else None,
        lines=lines / n if n else 0.0,
        jitter_median_px=float(np.median(shifts)) if shifts else None,
    )
