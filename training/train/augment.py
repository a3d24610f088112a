"""Training augmentations that keep image and mask aligned.

Applied to a frame already brought to the model's input size by the shared preprocessing
(`lane_seg.preprocess.resize_image` / `resize_mask`), and followed by the same
`preprocess.normalize` that evaluation and the node use, so training never sees a different
colour order, scale or normalisation than deployment.

Geometric ops (horizontal flip, scale/crop, small rotation) move image and mask together with
one affine matrix; the mask is warped bilinearly and re-thresholded at 25% like `resize_mask`,
so thin markings survive. Photometric ops (brightness/contrast/saturation/hue jitter, blur,
noise, JPEG) touch the image only. Every random draw comes from the `rng` passed in, which the
dataset seeds from (seed, epoch, index): augmentations are reproducible and a resumed run sees
exactly the draws it would have seen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.data.unlabelled import unlabelled_frames
from lane_seg.errors import LaneSegError
from lane_seg.settings import setting

STYLE_WINDOW = 0.05  # low-frequency block kept per style frame (>= the largest beta)


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = setting(0.5, "probability of a horizontal flip", range=(0.0, 1.0))
    scale: tuple[float, float] = setting(
        (0.85, 1.25), "zoom range about the image centre", range=(0.25, 4.0)
    )
    shift: float = setting(0.05, "max translation, fraction of width/height", range=(0.0, 0.5))
    rotate_deg: float = setting(5.0, "max |rotation|, degrees", range=(0.0, 90.0))
    brightness: float = setting(0.25, "max relative change", range=(0.0, 1.0))
    contrast: float = setting(0.25, "max relative change", range=(0.0, 1.0))
    saturation: float = setting(0.25, "max relative change", range=(0.0, 1.0))
    hue_deg: float = setting(8.0, "max hue shift, degrees", range=(0.0, 180.0))
    blur: float = setting(0.2, "probability of a Gaussian blur (sigma 0.3..1.5)", range=(0, 1))
    noise: float = setting(0.2, "probability of noise (sigma 2..8 grey levels)", range=(0, 1))
    jpeg: float = setting(0.2, "probability of a JPEG round trip (quality 40..90)", range=(0, 1))
    # Fourier domain adaptation (Yang & Soatto, CVPR 2020): with probability `style`, the
    # lowest spatial frequencies of the frame's amplitude spectrum (a window of `style_beta`
    # x the shorter side) are replaced by those of an unlabelled real frame, which carries its
    # colour, exposure and haze over without touching edges (so the label stays exact).
    style: float = setting(0.0, "probability of a Fourier style transfer", range=(0.0, 1.0))
    style_beta: tuple[float, float] = setting(
        (0.004, 0.02), "low-frequency window, fraction of the shorter side", range=(0, STYLE_WINDOW)
    )
    style_frames: tuple[str, ...] = ()  # globs of real frames (images or .mp4) to borrow from

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


VIDEO_STRIDE = 5  # every 5th frame of a style video


@functools.lru_cache(maxsize=4)
def style_bank(patterns: tuple[str, ...], height: int, width: int) -> tuple[np.ndarray, ...]:
    """Low-frequency amplitude blocks (3, k, k) of every style frame at the input size."""
    bank = []
    for frame in _style_frames(patterns):
        small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        amp = np.abs(
            np.fft.fftshift(np.fft.fft2(small.astype(np.float32), axes=(0, 1)), axes=(0, 1))
        )
        b = int(np.ceil(STYLE_WINDOW * min(height, width)))
        cy, cx = height // 2, width // 2
        bank.append(amp[cy - b : cy + b + 1, cx - b : cx + b + 1].transpose(2, 0, 1).copy())
    if not bank:
        raise LaneSegError(f"augment.style_frames {list(patterns)} matched no readable frame")
    return tuple(bank)


def _style_frames(patterns: tuple[str, ...]) -> Iterator[np.ndarray]:
    return (rgb for _, _, rgb in unlabelled_frames(patterns, VIDEO_STRIDE))


def fourier_style(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """FDA: the image's lowest-frequency amplitudes replaced by a real frame's."""
    h, w = image.shape[:2]
    bank = style_bank(cfg.style_frames, h, w)
    target = bank[int(rng.integers(len(bank)))]
    b = int(rng.uniform(*cfg.style_beta) * min(h, w))
    spec = np.fft.fftshift(np.fft.fft2(image.astype(np.float32), axes=(0, 1)), axes=(0, 1))
    cy, cx, k = h // 2, w // 2, target.shape[1] // 2
    win = (slice(cy - b, cy + b + 1), slice(cx - b, cx + b + 1))
    amp, phase = np.abs(spec[win]), np.angle(spec[win])
    borrowed = target[:, k - b : k + b + 1, k - b : k + b + 1].transpose(1, 2, 0)
    spec[win] = borrowed * np.exp(1j * phase) if amp.size else spec[win]
    out = np.real(np.fft.ifft2(np.fft.ifftshift(spec, axes=(0, 1)), axes=(0, 1)))
    return np.clip(out, 0, 255).astype(np.uint8)


def affine_matrix(
    height: int, width: int, rng: np.random.Generator, cfg: AugmentConfig
) -> np.ndarray | None:
    """One 2x3 matrix for flip, zoom, rotation and shift; None when it would be identity."""
    flip = rng.random() < cfg.hflip
    s = rng.uniform(*cfg.scale)
    angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * (width, height)
    if not flip and s == 1.0 and angle == 0.0 and tx == 0.0 and ty == 0.0:
        return None
    m = cv2.getRotationMatrix2D((width / 2, height / 2), angle, s)
    m[:, 2] += (tx, ty)
    if flip:  # x -> width - x after the other ops
        m = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m


def geometric(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    m = affine_matrix(h, w, rng, cfg)
    if m is None:
        return image, mask
    image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    warped = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return image, np.where(warped >= 64, 255, 0).astype(np.uint8)


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    x = image.astype(np.float32)
    if cfg.brightness:
        x *= 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    if cfg.contrast:
        mean = x.mean()
        x = (x - mean) * (1.0 + rng.uniform(-cfg.contrast, cfg.contrast)) + mean
    x = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.saturation or cfg.hue_deg:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg) / 2) % 180
        hsv[..., 1] *= 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
        hsv[..., 1:] = np.clip(hsv[..., 1:], 0, 255)
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return x


def degrade(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Camera-like degradations: blur, sensor noise, compression."""
    if rng.random() < cfg.blur:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.3, 1.5))
    if rng.random() < cfg.noise:
        noise = rng.normal(0.0, rng.uniform(2.0, 8.0), size=image.shape)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg:
        quality = int(rng.integers(40, 91))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return image


def augment(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 HxWx3 + 0/255 HxW mask at input size -> augmented pair, still aligned.

    Channels past the third (a teacher's probabilities, training/train/distill.py) move with
    the geometry and are left out of the photometric ops; the draws are the same either way."""
    image, mask = geometric(image, mask, rng, cfg)
    image, extra = image[..., :3], image[..., 3:]
    if cfg.style and cfg.style_frames and rng.random() < cfg.style:
        image = fourier_style(image, rng, cfg)
    image = degrade(photometric(image, rng, cfg), rng, cfg)
    if extra.shape[2]:
        image = np.concatenate([image, extra], axis=2)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)
