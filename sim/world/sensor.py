"""What the camera and its sensor do to the light: glare, exposure, white balance, gamma and
vignetting on the linear image, then motion blur, defocus, noise and JPEG on the 8-bit one."""

from __future__ import annotations

import math

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world.scene import Scene


def camera_effects(
    scene: Scene, cam: Camera, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Glare, exposure, white balance, gamma, vignetting. Paint lost in glare is unlabelled."""
    light = scene.light
    if light["glare"] is not None:
        az, el, strength = light["glare"]
        uv, z = cam.project(
            np.array([[math.cos(az) * 1e4, math.sin(az) * 1e4, math.tan(el) * 1e4]])
        )
        if z[0] > 0:
            vv, uu = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float32)
            r2 = ((uu - uv[0, 0]) ** 2 + (vv - uv[0, 1]) ** 2) / (0.25 * cam.width) ** 2
            veil = np.exp(-r2) * strength + 0.12 * strength
            img += veil[..., None] * np.array([1.0, 0.95, 0.8], np.float32)
            mask[veil > 0.6] = 0
    img *= light["exposure"] * np.asarray(light["white_balance"], np.float32)
    np.clip(img, 0.0, 1.0, out=img)
    img **= 1.0 / light["gamma"]
    if rng.random() < 0.3:  # vignetting
        vv, uu = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float32)
        r2 = ((uu - cam.cx) / cam.width) ** 2 + ((vv - cam.cy) / cam.height) ** 2
        img *= (1.0 - rng.uniform(0.2, 0.6) * r2)[..., None]
    return img


def sensor_effects(img8: np.ndarray, cfg_rng: np.random.Generator, probs: dict) -> np.ndarray:
    rng = cfg_rng
    if rng.random() < probs["motion_blur"]:
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        angle = rng.uniform(60, 120)
        c = (k - 1) / 2
        for t in np.linspace(-c, c, 4 * k):
            kernel[
                int(round(c + t * math.sin(math.radians(angle)))),
                int(round(c + t * math.cos(math.radians(angle)))),
            ] = 1
        img8 = cv2.filter2D(img8, -1, kernel / kernel.sum())
    if rng.random() < 0.3:
        img8 = cv2.GaussianBlur(img8, (0, 0), rng.uniform(0.4, 1.1))
    sigma = rng.uniform(0.0, 6.0)
    if sigma > 0.5:
        noise = rng.standard_normal(img8.shape, dtype=np.float32) * sigma
        img8 = np.clip(img8 + noise, 0, 255).astype(np.uint8)
    if rng.random() < probs["jpeg"]:
        q = int(rng.integers(30, 95))
        ok, buf = cv2.imencode(".jpg", img8, [cv2.IMWRITE_JPEG_QUALITY, q])
        img8 = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img8
