"""What a dashcam adds to a frame: the bonnet or dashboard, lens distortion, on-screen text.

Real frames come from wide lenses with barrel distortion, show the car's own bonnet (with the
scene reflected in it) or dashboard at the bottom, and often carry a burnt-in timestamp, speed
or logo. None of it is road paint, and a model that never saw it marks its edges and
lettering as lanes. The bonnet occludes what is below its edge, so the label is cleared there;
distortion warps image and label together; text leaves the label as it is (annotators label a
lane line under a timestamp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIRRORS = ("road", "sky")


@dataclass(frozen=True)
class HoodStyle:
    """The bonnet's outline and finish. Outline, as fractions of the frame height: `top`, the
    edge's highest row (near mid-frame); `bulge`, how much lower it is at the frame's sides. A
    wide lens over a short bonnet (CULane's camera) sees a tall hump with the road beside it.
    Finish: `paint`, the range of its colour's channels; `gloss`, how strongly it mirrors the
    scene; `mirror`, what it mirrors: "road", the frame just above its edge (a dashboard, a low
    bonnet), or "sky", the frame's upper half upside down (the upward-facing panel of a tall
    glossy bonnet, trees at its edge and sky below); `blur`, the mirror image's blur in px."""

    top: tuple[float, float] = (0.72, 0.96)
    bulge: tuple[float, float] = (0.01, 0.1)
    paint: tuple[float, float] = (0.02, 0.5)
    gloss: tuple[float, float] = (0.05, 0.35)
    mirror: str = "road"
    blur: float = 3.0


DEFAULT_HOOD = HoodStyle()


def _mirrored(img: np.ndarray, top: float, style: HoodStyle) -> np.ndarray | None:
    """What the bonnet below row `top` reflects, sized to it (None when nothing is above)."""
    h, w = img.shape[:2]
    if style.mirror == "road":
        k = int(h - top) + 1
        above = img[max(0, int(top) - k) : int(top)][::-1]
    else:
        above = img[: max(1, int(top) // 2)][::-1]
    if not len(above):
        return None
    return cv2.GaussianBlur(cv2.resize(above, (w, h - int(top))), (0, 0), style.blur)


def hood(
    img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, style: HoodStyle = DEFAULT_HOOD
) -> None:
    """A bonnet or dashboard across the bottom: a curved edge, shading, a reflection."""
    h, w = mask.shape
    top = h * rng.uniform(*style.top)
    bulge = h * rng.uniform(*style.bulge)
    xs = np.arange(w, dtype=np.float32)
    edge = top + bulge * ((xs - w * rng.uniform(0.4, 0.6)) / (w / 2)) ** 2
    rows = np.arange(h, dtype=np.float32)[:, None]
    below = rows >= edge[None, :]
    color = rng.uniform(*style.paint, 3).astype(np.float32)
    if rng.random() < 0.5:
        color[:] = color.mean()  # black, grey and white cars are the common ones
    depth = np.clip((rows - edge[None, :]) / max(1.0, h - top), 0.0, 1.0)
    paint = color * (1.15 - 0.5 * depth)[..., None]
    refl = _mirrored(img, top, style)
    if refl is not None:
        paint[int(top) :] += rng.uniform(*style.gloss) * refl
    img[below] = paint[below]
    mask[below] = 0


def distort(img: np.ndarray, mask: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Barrel distortion of strength k > 0, corners kept at the corners.

    An output pixel at normalised radius r samples the undistorted frame at r (1 + k r^2),
    scaled so the corner samples the corner: the centre is magnified and lines bow outwards.
    """
    h, w = mask.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    norm = math.hypot(cx, cy)
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = (u - cx) / norm, (v - cy) / norm
    f = (1.0 + k * (x * x + y * y)) / (1.0 + k)
    map_u, map_v = cx + x * f * norm, cy + y * f * norm
    out = cv2.remap(img, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    m = cv2.remap(mask, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out, np.where(m >= 96, 255, 0).astype(np.uint8)


def _osd_text(rng: np.random.Generator) -> str:
    kind = rng.integers(3)
    if kind == 0:
        y, mo, d = rng.integers(2012, 2027), rng.integers(1, 13), rng.integers(1, 29)
        hh, mm, ss = rng.integers(0, 24), rng.integers(0, 60), rng.integers(0, 60)
        sep = "/-."[int(rng.integers(3))]
        return f"{y}{sep}{mo:02d}{sep}{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"
    if kind == 1:
        return f"{rng.integers(0, 130):03d} KM/H"
    return f"N{rng.uniform(20, 60):.5f} E{rng.uniform(0, 140):.5f}"


def overlay_text(img8: np.ndarray, rng: np.random.Generator) -> None:
    """Burn one or two lines of dashcam text (timestamp, speed, GPS) into a corner."""
    h, w = img8.shape[:2]
    for _ in range(int(rng.integers(1, 3))):
        text = _osd_text(rng)
        scale = rng.uniform(0.25, 0.5) * h / 256
        thick = max(1, int(round(scale * 2)))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x = int(rng.choice([rng.uniform(2, 12), w - tw - rng.uniform(2, 12)]))
        y = int(rng.choice([th + rng.uniform(2, 8), h - rng.uniform(2, 8)]))
        color = [(255, 255, 255), (255, 230, 40), (230, 230, 230)][int(rng.integers(3))]
        if rng.random() < 0.5:
            cv2.putText(img8, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
        cv2.putText(img8, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    if rng.random() < 0.3:  # a logo sticker or mount in a top corner
        r = rng.uniform(0.03, 0.08) * w
        cx = rng.choice([rng.uniform(0, r), w - rng.uniform(0, r)])
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.ellipse(img8, (int(cx), 0), (int(r), int(r * 0.6)), 0, 0, 360, color, -1)
