"""sensor_msgs Image/CompressedImage <-> numpy without ROS: every encoding, every bad input."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from lane_seg.models.testing import bad_compressed_fields, bad_image_fields
from lane_seg.ros.image_codec import (
    BadImage,
    compressed_to_rgb,
    image_to_rgb,
    message_to_rgb,
    mono8_fields,
)


def rgb_frame(h=7, w=5):
    rng = np.random.default_rng(h * 100 + w)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def encode(rgb, encoding, pad=0):
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[..., ::-1]
    elif encoding == "rgba8":
        px = np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])
    elif encoding == "bgra8":
        px = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 9, np.uint8)])
    else:
        px = rgb[..., :1]
    h, w, c = px.shape
    rows = np.zeros((h, w * c + pad), np.uint8)
    rows[:, : w * c] = px.reshape(h, w * c)
    return SimpleNamespace(
        height=h, width=w, encoding=encoding, is_bigendian=0, step=w * c + pad, data=rows.tobytes()
    )


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_to_the_same_rgb(encoding, pad):
    rgb = rgb_frame()
    np.testing.assert_array_equal(image_to_rgb(encode(rgb, encoding, pad)), rgb)


def test_mono8_becomes_grey_rgb():
    rgb = rgb_frame()
    out = image_to_rgb(encode(rgb, "mono8", pad=1))
    assert out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out[..., 1], rgb[..., 0])


def test_numpy_and_array_data_decode_too():
    import array

    msg = encode(rgb_frame(), "rgb8")
    msg.data = np.frombuffer(msg.data, np.uint8)  # rosbags messages
    np.testing.assert_array_equal(image_to_rgb(msg), rgb_frame())
    msg.data = array.array("B", msg.data.tobytes())  # rclpy messages
    np.testing.assert_array_equal(image_to_rgb(msg), rgb_frame())


def test_decoded_frame_does_not_alias_the_message():
    msg = encode(rgb_frame(), "rgb8")
    msg.data = bytearray(msg.data)
    out = image_to_rgb(msg)
    msg.data[0] ^= 0xFF
    assert out[0, 0, 0] == rgb_frame()[0, 0, 0]


@pytest.mark.parametrize(
    "ext,fmt", [(".jpg", "jpeg"), (".png", "png"), (".png", "rgb8; png compressed bgr8")]
)
def test_compressed_decodes(ext, fmt):
    rgb = rgb_frame(16, 24)
    data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    out = message_to_rgb(SimpleNamespace(format=fmt, data=data))
    assert out.shape == (16, 24, 3)
    if ext == ".png":
        np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"encoding": "16UC1"}, "unsupported encoding"),
        ({"encoding": "RGB8"}, "unsupported encoding"),  # encodings are case-sensitive
        ({"step": 14}, "step 14 shorter"),
        ({"data": b"\0" * 104}, "truncated"),
        ({"data": b"\0" * 106}, "oversized"),
        ({"height": 0, "data": b""}, "zero size"),
        ({"width": 100000, "height": 100000, "step": 300000}, "above the limit"),
    ],
)
def test_bad_images_say_why(change, reason):
    msg = encode(rgb_frame(), "rgb8")  # 7 x 5 x 3: step 15, 105 bytes
    for k, v in change.items():
        setattr(msg, k, v)
    with pytest.raises(BadImage, match=reason):
        image_to_rgb(msg)


def test_bad_compressed_say_why():
    sof = b"\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    cases = [
        (SimpleNamespace(format="jpeg", data=b""), "empty"),
        (SimpleNamespace(format="jpeg", data=b"GIF89a...."), "neither a JPEG nor a PNG"),
        (SimpleNamespace(format="tiff", data=b"II*\0"), "unsupported compressed format"),
        (SimpleNamespace(format="jpeg", data=b"\xff\xd8" + sof + b"\xff\xd9"), "above the limit"),
        (SimpleNamespace(format="jpeg", data=b"\xff\xd8\xff\xe0\x00\x10JFIF\0"), "undecodable"),
    ]
    for msg, reason in cases:
        with pytest.raises(BadImage, match=reason):
            compressed_to_rgb(msg)


def test_every_generated_malformed_message_is_refused():
    """The generators feed the node's fuzz test; each message they make must be bad."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        with pytest.raises(BadImage):
            image_to_rgb(SimpleNamespace(**bad_image_fields(rng)))
        with pytest.raises(BadImage):
            compressed_to_rgb(SimpleNamespace(**bad_compressed_fields(rng)))


def test_mono8_fields_round_trip():
    mask = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 20).astype(np.uint8)
    f = mono8_fields(mask)
    assert (f["height"], f["width"], f["step"], f["encoding"]) == (3, 4, 4, "mono8")
    np.testing.assert_array_equal(f["data"].reshape(3, 4), mask)
