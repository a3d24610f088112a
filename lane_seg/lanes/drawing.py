"""Lane lines drawn as a label: the "lines" convention's mask (docs/architecture.md, Label
conventions), shared by the simulator's labels and lane truth and by pseudo-labels."""

from __future__ import annotations

import cv2
import numpy as np


def draw_lines(shape: tuple[int, int], lines: list[np.ndarray], width_px: float) -> np.ndarray:
    """0/255 mask with each polyline drawn `width_px` wide (sub-pixel vertices): the "lines"
    convention as the simulator draws it (sim/world/line_labels.py) and pseudo-labels follow."""
    mask = np.zeros(shape, np.uint8)
    h, w = shape
    # OpenCV draws a thick line thickness + 2 px wide (1 px stays 1 px).
    thickness = max(1, int(round(width_px)) - 2) if width_px >= 3 else 1
    for uv in lines:
        # Keep vertices within a generous frame so int32 fixed point never overflows; cv2
        # clips the segments to the image itself.
        uv = uv[(np.abs(uv[:, 0]) < 8 * w) & (np.abs(uv[:, 1]) < 8 * h)]
        if len(uv) < 2:
            continue
        pts = np.round(uv * 16).astype(np.int32)[None]
        cv2.polylines(mask, pts, False, 255, thickness, lineType=cv2.LINE_8, shift=4)
    return mask
