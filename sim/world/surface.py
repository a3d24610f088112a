"""The ground's look at each pixel: asphalt or concrete with its grain, patches, cracks, joints
and seams, the shoulder and the verge, the markings (and the mask of their visible paint),
shadows, and headlights and street lamps at night.

Markings are box-filtered over each pixel's footprint on the ground (`view`), which gives
anti-aliased paint in the image; the mask marks a pixel when it holds at least half of the paint
it could hold.
"""

from __future__ import annotations

import cv2
import numpy as np

from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.view import FrameGeometry

MIN_VISIBLE_PAINT = 0.2  # share of a pixel paint must cover to be visible, hence labelled


def _coverage(e: np.ndarray, half: float | np.ndarray, foot: np.ndarray) -> np.ndarray:
    """Fraction of the interval [e-foot/2, e+foot/2] inside [-half, half] (box filter)."""
    lo = np.maximum(e - foot * 0.5, -half)
    hi = np.minimum(e + foot * 0.5, half)
    return np.clip(hi - lo, 0.0, None) / foot


def _dash_coverage(s: np.ndarray, dash: float, period: float, phase: float, foot: np.ndarray):
    if dash <= 0.0:
        return np.ones_like(s)
    foot = np.minimum(foot, period)
    q = np.mod(s - phase, period)
    cov = np.zeros_like(s)
    for shift in (-period, 0.0, period):  # the dash before, this one, the next
        lo = np.maximum(q - foot * 0.5, shift)
        hi = np.minimum(q + foot * 0.5, shift + dash)
        cov += np.clip(hi - lo, 0.0, None)
    return cov / foot


def sample_texture(
    tex: np.ndarray, a: np.ndarray, b: np.ndarray, scale_a: float, scale_b: float
) -> np.ndarray:
    """Sample a tiling texture at 1-D ground coordinates (metres), `scale` metres per tile."""
    n = tex.shape[0]
    count = a.size
    cols = 1024  # cv2.remap wants 2-D maps of moderate width; BORDER_WRAP does the tiling
    rows = max(1, -(-count // cols))
    map_a = np.zeros(rows * cols, np.float32)
    map_b = np.zeros(rows * cols, np.float32)
    np.multiply(a, n / scale_a, out=map_a[:count], casting="unsafe")
    np.multiply(b, n / scale_b, out=map_b[:count], casting="unsafe")
    out = cv2.remap(
        tex,
        map_b.reshape(rows, cols),
        map_a.reshape(rows, cols),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )
    return out.ravel()[:count]


def road_surface(scene: Scene, fr: FrameGeometry) -> np.ndarray:
    """Road, shoulder and verge colours (before markings and light)."""
    sf, tex = scene.surface, scene.textures
    s, d, half = fr.s, fr.d, scene.half_width
    grain = sample_texture(tex["grain"], s, d, 1.5, 1.5) - 0.5
    grain *= np.exp(-fr.foot_s / 0.3)  # fine grain averages out where a pixel covers metres
    blotch = sample_texture(tex["blotch"], s, d, 60.0, 25.0) - 0.5
    tone = sf["base"] * (1.0 + 0.35 * grain + 0.3 * blotch)
    patches = sample_texture(tex["blotch"], s + 500.0, d + 7.0, 30.0, 9.0)
    tone *= np.where(patches > 1.0 - sf["patches"], 0.82, 1.0)
    crack = np.abs(sample_texture(tex["crack"], s, d, 14.0, 7.0) - 0.5)
    tone *= 1.0 - sf["cracks"] * 0.5 * np.clip(1.0 - crack / 0.012, 0.0, 1.0)
    if sf["joint_m"]:  # concrete slabs: dark transverse and longitudinal joints
        js = _coverage(
            np.mod(s + 0.5 * sf["joint_m"], sf["joint_m"]) - 0.5 * sf["joint_m"], 0.015, fr.foot_s
        )
        tone *= 1.0 - 0.45 * js
    for k in range(sf["seams"]):  # tar seams snake along the lanes
        off = -half + (k + 0.7) * scene.lane_width + 0.4 * np.sin(s / (7.0 + 3 * k) + k)
        tone *= 1.0 - 0.4 * _coverage(d - off, 0.02, fr.foot_d)
    rgb = tone[..., None] * np.asarray(sf["tint"], np.float32)
    edge = half + 0.25
    shoulder = (np.abs(d) > edge) & (np.abs(d) <= edge + sf["shoulder_m"])
    verge = np.abs(d) > edge + sf["shoulder_m"]
    rgb[shoulder] *= sf["shoulder_tone"]
    verge_rgb = {
        "grass": (0.22, 0.36, 0.14),
        "dirt": (0.42, 0.34, 0.25),
        "gravel": (0.5, 0.48, 0.45),
        "curb": (0.6, 0.6, 0.58),
    }[sf["verge"]]
    foliage = sample_texture(tex["foliage"], s, d, 5.0, 5.0)[:, None] + 0.5
    rgb = np.where(verge[:, None], np.asarray(verge_rgb, np.float32) * foliage, rgb)
    return rgb.astype(np.float32)


def markings(scene: Scene, fr: FrameGeometry, rgb: np.ndarray) -> np.ndarray:
    """Paint the markings onto rgb in place; return the mask (bool) of visible paint."""
    sf = scene.surface
    wear = sample_texture(scene.textures["wear"], fr.s, fr.d, 9.0, 3.0)
    paint_left = np.clip((wear - sf["wear"]) / 0.12 + 0.5, 0.0, 1.0)  # 0 where worn away
    mask = np.zeros(fr.s.shape, bool)
    for stripes in scene.boundaries:
        for st in stripes:
            near = np.abs(fr.d - st.offset) < st.width + fr.foot_d
            if not near.any():
                continue
            e = fr.d[near] - st.offset
            fd, fs = fr.foot_d[near], fr.foot_s[near]
            across = _coverage(e, st.width * 0.5, fd)
            along = _dash_coverage(fr.s[near], st.dash, st.period, st.phase, fs)
            alpha = across * along * paint_left[near]
            # Labelled: the pixel holds at least half the paint it could (a thin far line still
            # gets its one-pixel trace) and the paint covers enough of it to show in the frame
            # (not a sliver in a pixel whose footprint spans metres near the horizon).
            full = np.minimum(1.0, st.width / fd)
            mask[near] |= (
                (across >= 0.5 * full)
                & (along >= 0.5)
                & (paint_left[near] >= 0.5)
                & (alpha >= MIN_VISIBLE_PAINT)
            )
            color = np.asarray(st.color, np.float32)
            faded = (1.0 - sf["fade"]) * color + sf["fade"] * rgb[near]
            rgb[near] = (1.0 - alpha[:, None]) * rgb[near] + alpha[:, None] * faded
    return mask & fr.on_road_geom


def shadow_factor(scene: Scene, fr: FrameGeometry) -> np.ndarray:
    shade = np.ones(fr.s.shape, np.float32)
    if not scene.shadows or scene.light["sun"] <= 0.0:
        return shade
    depth = 0.35 + 0.3 * float(scene.light["overcast"])
    soft = sample_texture(scene.textures["foliage"], fr.s, fr.d, 3.0, 3.0)
    for kind, s0, d0, size_s, size_d in scene.shadows:
        if kind == "blob":
            r = ((fr.s - s0) / size_s) ** 2 + ((fr.d - d0) / size_d) ** 2 + 0.6 * (soft - 0.5)
            inside = np.clip((1.0 - r) * 4.0, 0.0, 1.0)
        elif kind == "stripe":
            e = (fr.s - s0) - d0 * fr.d
            inside = _coverage(e, size_s * 0.5, fr.foot_s)
        else:  # band: a bridge overhead
            inside = (np.abs(fr.s - s0) < size_s * 0.5).astype(np.float32)
        shade *= 1.0 - (1.0 - depth) * inside
    return shade


def night_light(
    scene: Scene, fr: FrameGeometry, rgb: np.ndarray, paint: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Headlights (falloff with distance, a cone ahead) and street lamps; paint retro-reflects."""
    cone = np.clip(1.0 - fr.lateral / 0.45, 0.0, 1.0) ** 1.5
    beam = 2.2 * cone / (1.0 + (fr.dist / 14.0) ** 2)
    if scene.light["street_lights"]:
        beam += 0.35 * (0.5 + 0.5 * np.cos(2 * np.pi * fr.s / 35.0)) ** 6 * np.exp(-fr.dist / 120)
    lit = 0.06 + beam * (1.0 + 1.5 * paint) + 0.08 * paint  # paint retro-reflects
    return rgb * lit[:, None], lit
