"""Pictures for people: mask overlays, fitted lane lines and contact sheets."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lane_seg.lanes.extract import LaneInstance

EGO_LINE_RGB = (255, 64, 32)  # the ego lane's two lines
LINE_RGB = (32, 160, 255)  # every other line


def overlay(
    rgb: np.ndarray, mask: np.ndarray, color=(0, 255, 0), alpha: float = 0.55
) -> np.ndarray:
    """RGB frame with the mask's lane pixels tinted (mask resized to the frame if needed)."""
    if mask.shape[:2] != rgb.shape[:2]:
        mask = cv2.resize(mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
    out = rgb.copy()
    on = mask > 127
    out[on] = ((1 - alpha) * rgb[on] + alpha * np.asarray(color, np.float32)).astype(np.uint8)
    return out


def draw_lanes(rgb: np.ndarray, lanes: Sequence[LaneInstance]) -> np.ndarray:
    """The RGB frame (in place) with each lane instance drawn as its fitted polyline, in the
    frame's pixels: the ego lane's lines orange, the others blue, about 1/200 of the width."""
    thickness = max(2, round(rgb.shape[1] / 200))
    for lane in lanes:
        pts = np.round(lane.points * 16).astype(np.int32)[None]  # 4 fractional bits
        color = EGO_LINE_RGB if lane.ego else LINE_RGB
        cv2.polylines(rgb, pts, False, color, thickness, cv2.LINE_AA, shift=4)
    return rgb


def contact_sheet(tiles: list[np.ndarray], cols: int = 4, gap: int = 4) -> np.ndarray:
    """Grid of equally sized RGB tiles, white gaps between them."""
    if not tiles:
        raise ValueError("no tiles for the contact sheet")
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tile
    return sheet


def put_text(bgr: np.ndarray, lines: list[str]) -> np.ndarray:
    """White text on a darkened band at the top of the frame (in place)."""
    band = bgr[: 8 + 15 * len(lines)]
    band[:] = (band * 0.45).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(
            bgr, line, (6, 16 + 15 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
            cv2.LINE_AA,
        )  # fmt: skip
    return bgr
