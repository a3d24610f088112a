"""The sky above the horizon (clouds, and a skyline of trees, hills or buildings), its colours
for the scene's light, and the colour of fog."""

from __future__ import annotations

import numpy as np

from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.surface import sample_texture
from lane_seg.sim.world.view import FrameGeometry

SKY_DAY = np.array([0.45, 0.62, 0.85], np.float32)
SKY_OVERCAST = np.array([0.68, 0.7, 0.74], np.float32)
SKY_DUSK = np.array([0.72, 0.58, 0.5], np.float32)
SKY_NIGHT = np.array([0.02, 0.03, 0.06], np.float32)


def sky_base(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(zenith colour, horizon colour) for the scene's light."""
    light = scene.light
    base = (
        SKY_NIGHT
        if light["time"] == "night"
        else (
            SKY_DUSK
            if light["time"] == "dusk"
            else (SKY_OVERCAST if light["overcast"] else SKY_DAY)
        )
    )
    horizon = base * 0.6 + 0.4 * np.array([0.85, 0.85, 0.85], np.float32) * (light["sun"] + 0.05)
    if scene.weather["fog_m"]:
        base, horizon = (
            base * 0.3 + 0.7 * fog_color(scene),
            horizon * 0.3 + 0.7 * fog_color(scene),
        )
    return base, horizon


def sky_pixels(scene: Scene, fr: FrameGeometry) -> np.ndarray:
    """Sky with clouds, and a roadside skyline (trees, hills, buildings) over azimuth."""
    light = scene.light
    el, az = fr.sky_el, fr.sky_az
    base, horizon = sky_base(scene)
    clouds = sample_texture(scene.textures["sky"], az * 3.0, el * 6.0, 3.0, 2.0)
    t = np.clip(el / 0.5, 0.0, 1.0)[:, None]
    sky = (horizon * (1 - t) + base * t) * (0.85 + 0.3 * clouds[:, None])
    kind = scene.roadside["skyline"]
    prof = sample_texture(scene.textures["foliage"], az * 8.0, np.zeros_like(az), 4.0, 1.0)
    if kind == "trees":
        top, color = 0.02 + 0.12 * prof, np.array([0.12, 0.2, 0.1], np.float32)
    elif kind == "hills":
        top, color = 0.01 + 0.06 * prof, np.array([0.3, 0.34, 0.3], np.float32)
    elif kind == "buildings":
        top = 0.02 + 0.1 * np.round(prof * 5) / 5
        color = np.array([0.4, 0.38, 0.37], np.float32)
    else:
        top, color = np.full_like(az, 0.004), np.array([0.35, 0.36, 0.3], np.float32)
    scale = 0.08 if light["time"] == "night" else 0.5 + 0.5 * light["sun"]
    texture = (
        0.8 + 0.4 * sample_texture(scene.textures["grain"], az * 10, el * 10, 1.0, 1.0)[:, None]
    )
    skyline = color * scale * texture
    if scene.weather["fog_m"]:
        skyline = skyline * 0.35 + 0.65 * fog_color(scene)
    return np.where((el < top)[:, None], skyline, sky).astype(np.float32)


def fog_color(scene: Scene) -> np.ndarray:
    if scene.light["time"] == "night":
        return np.array([0.03, 0.03, 0.04], np.float32)
    return np.array([0.72, 0.73, 0.75], np.float32) * (0.6 + 0.4 * scene.light["sun"])
