"""The one preprocessing path: training, evaluation, calibration, the node and the closed loop.

Every consumer turns an RGB uint8 frame into the model's input with `to_input` and a model's
logits back into a mask at the frame's resolution with `to_mask`. The parameters travel with
the model (`PreprocessConfig.to_metadata`), so a deployed ONNX file needs nothing else.

`crop_top` cuts a fraction of the frame's height from the top (the sky) before the resize, so
the model spends its pixels on the road; the way back puts the cut rows in as background, so
masks and lane lines stay in the whole frame's coordinates (docs/architecture.md, contract 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

# Probability 0.5 on the sigmoid, the same everywhere (training metrics, eval, node).
PROB_THRESHOLD = 0.5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("stretch", "letterbox")
COLOR_ORDERS = ("rgb", "bgr")
MAX_CROP_TOP = 0.9  # the model sees at least the frame's lower tenth


@dataclass(frozen=True)
class PreprocessConfig:
    height: int = 256
    width: int = 512
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color_order: str = "rgb"  # channel order the model was trained with
    resize: str = "stretch"  # "letterbox" keeps the aspect ratio and pads
    crop_top: float = 0.0  # fraction of the frame's height cut from the top before the resize

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order must be one of {COLOR_ORDERS}")
        if not 0.0 <= self.crop_top <= MAX_CROP_TOP:  # NaN fails too
            raise ValueError(
                f"crop_top must be in [0, {MAX_CROP_TOP:g}] (the fraction of the frame's height "
                f"cut from the top), got {self.crop_top!r}"
            )

    def to_metadata(self) -> dict[str, str]:
        """String key/values for ONNX metadata_props and checkpoints."""
        d = asdict(self)
        return {
            "input_height": str(d["height"]),
            "input_width": str(d["width"]),
            "mean": ",".join(f"{x:.6g}" for x in d["mean"]),
            "std": ",".join(f"{x:.6g}" for x in d["std"]),
            "color_order": d["color_order"],
            "resize": d["resize"],
            "crop_top": str(float(d["crop_top"])),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> PreprocessConfig:
        def triple(key: str) -> tuple[float, float, float]:
            a, b, c = (float(x) for x in meta[key].split(","))
            return a, b, c

        return cls(
            height=int(meta["input_height"]),
            width=int(meta["input_width"]),
            mean=triple("mean"),
            std=triple("std"),
            color_order=meta.get("color_order", "rgb"),
            resize=meta.get("resize", "stretch"),
            crop_top=float(meta.get("crop_top", "0")),  # models made before the crop: none
        )


@dataclass(frozen=True)
class Placement:
    """Where the frame sits inside the model input (rows cut from the top, scale and padding),
    to undo it later."""

    src_height: int
    src_width: int
    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    crop_y: int = 0  # rows of the frame cut from the top (`crop_top`)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frame's kept rows inside the model input."""
        kept = self.src_height - self.crop_y
        return round(self.src_width * self.scale_x), round(kept * self.scale_y)


def crop_rows(src_height: int, cfg: PreprocessConfig) -> int:
    """Rows `crop_top` cuts from the top of a frame `src_height` rows high (one row stays)."""
    return min(round(src_height * cfg.crop_top), src_height - 1)


def placement(src_height: int, src_width: int, cfg: PreprocessConfig) -> Placement:
    crop = crop_rows(src_height, cfg)
    kept = src_height - crop
    if cfg.resize == "stretch":
        return Placement(
            src_height, src_width, cfg.width / src_width, cfg.height / kept, 0, 0, crop
        )
    s = min(cfg.width / src_width, cfg.height / kept)
    w, h = round(src_width * s), round(kept * s)
    pad_x, pad_y = (cfg.width - w) // 2, (cfg.height - h) // 2
    return Placement(src_height, src_width, s, s, pad_x, pad_y, crop)


def uncropped(cfg: PreprocessConfig) -> PreprocessConfig:
    """The same preprocessing without the crop, at the model's scale: the whole frame the
    model's input is cut from (`cfg` itself when nothing is cut). Data sets keep whole frames."""
    if cfg.crop_top == 0:
        return cfg
    height = round(cfg.height / (1.0 - cfg.crop_top))
    return replace(cfg, height=height, crop_top=0.0)


def _fit(img: np.ndarray, pl: Placement, cfg: PreprocessConfig, interp: int) -> np.ndarray:
    img = img[pl.crop_y :]
    w, h = pl.size
    if (h, w) != img.shape[:2]:
        img = cv2.resize(img, (w, h), interpolation=interp)
    if (pl.pad_x, pl.pad_y) == (0, 0) and (h, w) == (cfg.height, cfg.width):
        return img
    out = np.zeros((cfg.height, cfg.width, *img.shape[2:]), dtype=img.dtype)
    out[pl.pad_y : pl.pad_y + h, pl.pad_x : pl.pad_x + w] = img
    return out


def resize_image(image_rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """RGB uint8 frame of any size -> RGB uint8 at the model's input size."""
    pl = placement(image_rgb.shape[0], image_rgb.shape[1], cfg)
    return _fit(image_rgb, pl, cfg, cv2.INTER_AREA)


def resize_probability(prob: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """A whole frame's float32 probability map of any size (another model's
    `frame_probability`) -> the same map in this model's input geometry: cut by `crop_top`,
    resized (area) and placed as `resize_image` places the frame, padding 0. Distillation maps a
    teacher's output onto a student with another size or crop this way."""
    pl = placement(prob.shape[0], prob.shape[1], cfg)
    return _fit(np.asarray(prob, dtype=np.float32), pl, cfg, cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """0/255 mask -> 0/255 mask at the model's input size.

    Area averaging then a 25% threshold, so that markings thinner than a pixel after
    downscaling stay in the label instead of vanishing as they would with nearest-neighbour.
    """
    pl = placement(mask.shape[0], mask.shape[1], cfg)
    resized = _fit(mask, pl, cfg, cv2.INTER_AREA)
    return np.where(resized >= 64, 255, 0).astype(np.uint8)


def normalize(image_rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """RGB uint8 HxWx3 at input size -> float32 3xHxW, colour order and mean/std applied."""
    x = image_rgb.astype(np.float32) * (1.0 / 255.0)
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    x = (x - mean) / std
    if cfg.color_order == "bgr":
        x = x[..., ::-1]
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def to_input(image_rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """RGB uint8 frame of any size -> float32 1x3xHxW model input."""
    return normalize(resize_image(image_rgb, cfg), cfg)[None]


def probability(logits: np.ndarray) -> np.ndarray:
    """Sigmoid without overflow for large negative logits."""
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def frame_probability(
    logits: np.ndarray, src_shape: tuple[int, int], cfg: PreprocessConfig
) -> np.ndarray:
    """Model logits (HxW at input size) -> lane probabilities of the whole frame at the
    model's scale (the letterbox padding cut off; rows `crop_top` cut put back on top as
    probability 0, background): what the lane step reads lines from."""
    pl = placement(src_shape[0], src_shape[1], cfg)
    prob = probability(np.asarray(logits).reshape(cfg.height, cfg.width))
    w, h = pl.size
    prob = prob[pl.pad_y : pl.pad_y + h, pl.pad_x : pl.pad_x + w]
    if pl.crop_y == 0:
        return prob
    top = np.zeros((round(pl.crop_y * pl.scale_y), w), np.float32)
    return np.vstack([top, prob])


def to_mask(
    logits: np.ndarray,
    src_shape: tuple[int, int],
    cfg: PreprocessConfig,
    threshold: float = PROB_THRESHOLD,
) -> np.ndarray:
    """Model logits (HxW at input size) -> 0/255 uint8 mask at the source frame's size.

    The probability is resampled (bilinear) before thresholding, so the mask at a larger source
    resolution has smooth edges rather than blocky upscaled pixels.
    """
    return probability_to_mask(frame_probability(logits, src_shape, cfg), src_shape, threshold)


def probability_to_mask(
    prob: np.ndarray, src_shape: tuple[int, int], threshold: float = PROB_THRESHOLD
) -> np.ndarray:
    """`frame_probability`'s map -> `to_mask`'s mask at the source frame's size."""
    if prob.shape != tuple(src_shape):
        prob = cv2.resize(prob, (src_shape[1], src_shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.where(prob > threshold, 255, 0).astype(np.uint8)
