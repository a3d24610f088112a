"""Encoded image bytes (PNG, JPEG) -> pixels: the one decoder behind dataset files, imported
frames and compressed camera messages.

A damaged PNG (a chunk cut short or failing its CRC, no image data, no end) is refused before
OpenCV sees it: libpng would print a line of its own on stderr for it, and callers report bad
files and frames themselves, once.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(data: bytes | np.ndarray) -> str:
    """What is wrong with the chunks of PNG `data` ("" if nothing): each whole and passing its
    CRC, image data present, IEND at the end. libpng prints a line of its own on stderr for a
    file that fails these, so `decode_image` never hands it one."""
    view = memoryview(data).cast("B")
    if bytes(view[:8]) != PNG_SIGNATURE:
        return "no PNG signature"
    pos, image_data = 8, False
    while pos + 12 <= len(view):
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        name = kind.decode("latin-1")
        if end > len(view):
            return f"{name} chunk cut short (truncated file)"
        if zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack(">I", view[end - 4 : end])[0]:
            return f"{name} chunk fails its CRC (corrupt file)"
        if kind == b"IEND":
            return "" if image_data else "no image data"
        image_data |= kind == b"IDAT"
        pos = end
    return "no IEND chunk (truncated file)"


def decode_image(data: bytes | np.ndarray, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """cv2.imdecode (BGR, or grey with IMREAD_GRAYSCALE); None for data that is no image. A
    damaged PNG is refused by `png_problem` first, so libpng never prints to stderr."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    if not buf.size or (bytes(buf[:8]) == PNG_SIGNATURE and png_problem(buf)):
        return None
    return cv2.imdecode(buf, flags)


def _png_size(buf: bytes) -> tuple[int, int] | None:
    if buf[:8] == PNG_SIGNATURE and len(buf) >= 24 and buf[12:16] == b"IHDR":
        width, height = struct.unpack(">II", buf[16:24])
        return height, width
    return None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    """Height and width from a JPEG's start-of-frame marker, without decoding."""
    if buf[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", buf[i + 2 : i + 4])
        if marker in _SOF:
            if i + 9 > len(buf):
                return None
            height, width = struct.unpack(">HH", buf[i + 5 : i + 9])
            return height, width
        i += 2 + length
    return None


def encoded_size(buf: bytes) -> tuple[int, int] | None:
    """(height, width) that PNG or JPEG bytes declare in their header, read without decoding
    (so a small file that claims a gigapixel image is refused before it is allocated); None
    for other data."""
    return _png_size(buf) or _jpeg_size(buf)
