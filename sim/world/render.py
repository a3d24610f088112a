"""Render a camera frame and its exact lane-marking mask from a Scene and an ego pose.

The frame is built in layers, each in a module of its own: where each pixel looks (`view`: the
ground point in Frenet (s, d) on the road, or the sky), the ground's colours and the markings
with their mask (`surface`), light, fog and haze, the sky (`sky`), upright things far to near,
which clear the mask where they cover the road (`objects`), the "lines" label (`line_labels`),
what a dashcam adds (`dashcam`), and the camera's and sensor's effects (`sensor`). Image and
mask come from the same geometry by construction.
"""

from __future__ import annotations

import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.drawing import draw_lines
from lane_seg.sim.world import dashcam
from lane_seg.sim.world.line_labels import label_lines
from lane_seg.sim.world.objects import paint_objects
from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.sensor import camera_effects, sensor_effects
from lane_seg.sim.world.sky import fog_color, sky_base, sky_pixels
from lane_seg.sim.world.surface import markings, night_light, road_surface, shadow_factor
from lane_seg.sim.world.view import FrameGeometry, Pose


def render(
    scene: Scene,
    cam: Camera,
    pose: Pose,
    rng: np.random.Generator,
    draw_distance: float = 250.0,
    motion_blur_probability: float = 0.3,
    jpeg_probability: float = 0.7,
    hood: bool | None = None,
    label: str = "paint",
    line_width_px: float = 5.0,
    distortion: float = 0.0,
    osd: bool = False,
    lines_over_hood: bool = True,
    hood_style: dashcam.HoodStyle = dashcam.DEFAULT_HOOD,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: (RGB uint8 HxWx3, mask uint8 HxW).

    `label` "paint": 255 on visible lane-marking paint; "lines": the ego lane's boundaries and
    their neighbours as continuous lines `line_width_px` wide (`line_labels`). `distortion`
    (barrel, > 0) and `osd` (burnt-in text) are what a dashcam adds (`dashcam`); lane lines
    run on over the bonnet unless `lines_over_hood` is False.
    """
    fr = FrameGeometry(scene, cam, pose, draw_distance)
    light = scene.light
    rgb = road_surface(scene, fr)
    paint = markings(scene, fr, rgb)
    if scene.weather["rain"]:  # wet road: darker, with the sky's sheen at grazing angles
        sheen = np.clip(fr.dist / 60.0, 0.0, 1.0)
        rgb = rgb * 0.6 + (0.25 * sheen)[:, None] * (0.4 + 0.6 * light["sun"])
    visible = np.ones(len(fr.g), np.float32)  # how well the camera can see each ground point
    if light["time"] == "night":
        rgb, lit = night_light(scene, fr, rgb, paint.astype(np.float32))
        visible *= np.clip(lit / 0.3, 0.0, 1.0)
    else:
        rgb *= (0.55 + 0.45 * light["sun"]) * shadow_factor(scene, fr)[:, None]
    _, horizon = sky_base(scene)
    if scene.weather["fog_m"]:
        k = np.exp(-fr.dist / scene.weather["fog_m"])
        rgb = rgb * k[:, None] + (1.0 - k[:, None]) * fog_color(scene)
        visible *= k
    # Haze blends the far road into the horizon, as it is in real frames.
    far = np.clip((fr.dist - 0.6 * draw_distance) / (0.4 * draw_distance), 0.0, 1.0)[:, None]
    rgb = rgb * (1.0 - far) + horizon * far
    h, w = fr.shape
    img = np.empty((h * w, 3), np.float32)
    img[fr.g] = rgb
    img[fr.sky_idx] = sky_pixels(scene, fr)
    img = img.reshape(h, w, 3)
    mask = np.zeros(h * w, np.uint8)
    # Paint the camera cannot make out (unlit at night, lost in fog or haze) is not labelled.
    mask[fr.g] = np.where(paint & (visible * (1.0 - far[:, 0]) > 0.3), 255, 0)
    mask = mask.reshape(h, w)
    paint_objects(scene, cam, pose, fr, img, mask)
    if label == "lines":
        lines = label_lines(scene, cam, pose, fr.s_ego, draw_distance, line_width_px)
        mask = draw_lines(fr.shape, lines, line_width_px)
    if hood if hood is not None else scene.roadside["hood"]:
        # The bonnet hides paint; lane lines run on to the bottom of the frame over it, as
        # CULane's and TuSimple's annotators draw them.
        hidden = label == "paint" or not lines_over_hood
        dashcam.hood(img, mask if hidden else mask.copy(), rng, hood_style)
    # Paint lost in glare is unlabelled; a lane line is drawn through it, as annotators do.
    img = camera_effects(scene, cam, img, mask if label == "paint" else mask.copy(), rng)
    if distortion > 0.0:
        img, mask = dashcam.distort(img, mask, distortion)
    img8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if osd:
        dashcam.overlay_text(img8, rng)
    img8 = sensor_effects(
        img8, rng, {"motion_blur": motion_blur_probability, "jpeg": jpeg_probability}
    )
    return img8, mask
