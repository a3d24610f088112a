"""Sizes on the command line: always WIDTHxHEIGHT, as cameras and image tools write them
(1280x720, 512x256), for every command (`import --size`, `models --size`,
`collect --image-size`). Tensor shapes (N x 3 x H x W) are printed as such, never as sizes."""

from __future__ import annotations

import re

from lane_seg.errors import LaneSegError

MAX_IMAGE_SIDE = 8192  # px; an 8K frame is 7680x4320
# Largest model input side, px: model metadata beyond it is refused at load, before any engine
# allocates an input of that size (docs/architecture.md, contract 2).
MAX_INPUT_SIDE = 2048


def parse_size(
    text: str, flag: str, minimum: int = 1, maximum: int = MAX_IMAGE_SIDE
) -> tuple[int, int]:
    """ "512x256" -> (width 512, height 256), each side in minimum..maximum."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m:
        raise LaneSegError(f"{flag} {text!r}: expected WIDTHxHEIGHT, e.g. 512x256")
    width, height = int(m.group(1)), int(m.group(2))
    if not (minimum <= width <= maximum and minimum <= height <= maximum):
        raise LaneSegError(
            f"{flag} {text}: width and height must each be {minimum}..{maximum} px (WIDTHxHEIGHT)"
        )
    return width, height
