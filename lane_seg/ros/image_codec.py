"""sensor_msgs Image / CompressedImage <-> numpy, with every check a camera stream can fail.

No ROS import: the functions read the message fields by name (`height`, `width`, `encoding`,
`step`, `data`, `format`), so they work on rclpy messages, on `rosbags` messages in bag replay and
on plain objects in tests. cv_bridge is not needed (and not installable from PyPI).

Every way a message can be bad raises `BadImage` with a short reason; the node and bag replay
count those and keep going.
"""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from lane_seg.images import decode_image, encoded_size

# encoding -> (channels, cv2 conversion to RGB or None when already RGB)
ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
MAX_PIXELS = 4096 * 4096  # default ceiling: bigger frames are refused rather than allocated
COMPRESSED_FORMATS = ("jpeg", "png")


class BadImage(ValueError):
    """A message that cannot be a frame; the text says why."""


def _as_bytes_view(data) -> np.ndarray:
    """The data field as a flat uint8 array without a copy where possible."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def check_size(height: int, width: int, max_pixels: int = MAX_PIXELS) -> None:
    if height <= 0 or width <= 0:
        raise BadImage(f"zero size {width}x{height}")
    if height * width > max_pixels:
        raise BadImage(f"size {width}x{height} above the limit of {max_pixels} pixels")


def image_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> RGB uint8 HxWx3 (a new array; the message is not kept)."""
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise BadImage(f"unsupported encoding {msg.encoding!r} (use {', '.join(ENCODINGS)})")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    check_size(height, width, max_pixels)
    channels, conversion = ENCODINGS[encoding]
    row = width * channels
    if step < row:
        raise BadImage(f"step {step} shorter than a row ({width} px x {channels} B = {row})")
    data = _as_bytes_view(msg.data)
    if data.size != step * height:
        what = "truncated" if data.size < step * height else "oversized"
        raise BadImage(f"{what} data: {data.size} bytes for step {step} x {height} rows")
    pixels = data.reshape(height, step)[:, :row].reshape(height, width, channels)
    if conversion is None:
        return pixels.copy()
    if channels == 1:
        pixels = pixels[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def compressed_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png) -> RGB uint8 HxWx3.

    The declared size is read from the file header before decoding, so a tiny message that
    claims a gigapixel image is refused without allocating it.
    """
    fmt = str(msg.format).lower()
    # image_transport writes e.g. "jpeg", "bgr8; jpeg compressed bgr8", "rgb8; png compressed"
    if not any(f in fmt for f in COMPRESSED_FORMATS) and fmt not in ("", "jpg"):
        raise BadImage(f"unsupported compressed format {msg.format!r} (use jpeg or png)")
    buf = _as_bytes_view(msg.data).tobytes()
    if not buf:
        raise BadImage("empty compressed data")
    size = encoded_size(buf)
    if size is None and buf.startswith(b"\xff\xd8"):
        raise BadImage("undecodable JPEG: no frame header (truncated or corrupt)")
    if size is None:
        raise BadImage("data is neither a JPEG nor a PNG (bad header)")
    check_size(*size, max_pixels)
    decoded = decode_image(buf)
    if decoded is None or decoded.shape[:2] != size:
        kind = "PNG" if buf.startswith(b"\x89PNG") else "JPEG"
        raise BadImage(f"undecodable {kind} data")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def message_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Either message type -> RGB uint8 HxWx3."""
    if hasattr(msg, "format"):
        return compressed_to_rgb(msg, max_pixels)
    return image_to_rgb(msg, max_pixels)


def pixel_fields(pixels: np.ndarray, encoding: str) -> dict:
    """Field values of a sensor_msgs/Image holding `pixels`, already laid out for `encoding`
    (HxW for mono8, HxWx3 for rgb8/bgr8, HxWx4 for rgba8/bgra8)."""
    px = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = px.shape[:2]
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": 0,
        "step": width * ENCODINGS[encoding][0],
        "data": px.reshape(-1),
    }


def mono8_fields(mask: np.ndarray) -> dict:
    """Field values of a mono8 sensor_msgs/Image holding `mask` (HxW uint8)."""
    return pixel_fields(mask, "mono8")


def bgr8_fields(image_bgr: np.ndarray) -> dict:
    return pixel_fields(image_bgr, "bgr8")


# RGB -> each encoding's layout (the inverse of ENCODINGS' conversions)
FROM_RGB = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA,
    "mono8": cv2.COLOR_RGB2GRAY,
}


def rgb_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict:
    """Field values of a sensor_msgs/Image showing the RGB frame `rgb` in `encoding`."""
    conversion = FROM_RGB[encoding]
    return pixel_fields(rgb if conversion is None else cv2.cvtColor(rgb, conversion), encoding)


def compressed_fields(rgb: np.ndarray, fmt: str = "jpeg") -> dict:
    """Field values of a sensor_msgs/CompressedImage holding `rgb` as jpeg or png."""
    ok, buf = cv2.imencode(".png" if fmt == "png" else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} frame as {fmt}")
    return {"format": fmt, "data": buf.reshape(-1)}


def mask_array(msg) -> np.ndarray:
    """The HxW pixels of a mono8 Image message (rclpy or rosbags), without a copy."""
    return _as_bytes_view(msg.data).reshape(int(msg.height), int(msg.step))[:, : int(msg.width)]


def quiet_opencv() -> None:
    """Silence OpenCV's own decoder messages: callers report bad frames themselves, once."""
    with contextlib.suppress(AttributeError):  # old OpenCV builds without cv2.utils.logging
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
