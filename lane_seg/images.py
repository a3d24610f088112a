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
