"""CARLA's semantic tags as lane masks: versions, tag schemes, raw BGRA buffers, geometry.

Nothing here talks to a server, so all of it is tested without one. CARLA's semantic camera
writes the tag of each pixel into the red channel of a BGRA image. RoadLine is tag 6 up to
0.9.13; 0.9.14 renumbered the tags to the Cityscapes palette, where RoadLine is 24 and 6 means
Poles. Reading the wrong scheme gives a mask of poles, so the scheme is always chosen from the
server's version, and said out loud.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.errors import LaneSegError

MIN_VERSION = (0, 9, 13)
RENUMBERED_IN = (0, 9, 14)
ROADLINE_OLD = 6  # CARLA <= 0.9.13
ROADLINE_NEW = 24  # CARLA >= 0.9.14 (6 is Poles there)
ROADLINE_RGB = (157, 234, 50)  # the palette colour of RoadLine, the same in every version

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) from a CARLA version string: '0.9.13', '0.9.14-1-g4e1c2', '0.10.0'.

    Suffixes (git describe, '-dirty', a fourth '.2' of hotfix builds) are ignored.
    """
    m = _VERSION.match(text or "")
    if not m:
        raise ValueError(f"not a CARLA version: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class TagScheme:
    """Which semantic tag is RoadLine for the server we talk to."""

    server_version: str
    roadline: int

    @property
    def description(self) -> str:
        era = "up to 0.9.13" if self.roadline == ROADLINE_OLD else "from 0.9.14"
        return (
            f"CARLA server {self.server_version}: RoadLine is semantic tag {self.roadline} "
            f"(the numbering {era})"
        )


def tag_scheme(server_version: str) -> TagScheme:
    """The RoadLine tag for a server version; a clear error for unsupported or unknown ones."""
    try:
        version = parse_version(server_version)
    except ValueError:
        raise LaneSegError(
            f"cannot tell the CARLA server's version from {server_version!r}, so the RoadLine "
            "tag (6 or 24) is unknown; use a CARLA 0.9.13+ release build"
        ) from None
    if version < MIN_VERSION:
        raise LaneSegError(
            f"CARLA server {server_version} is older than 0.9.13, which is not supported; "
            "use CARLA 0.9.13 or newer"
        )
    roadline = ROADLINE_OLD if version < RENUMBERED_IN else ROADLINE_NEW
    return TagScheme(server_version, roadline)


def _bgra(raw: bytes | bytearray | memoryview | np.ndarray, width: int, height: int) -> np.ndarray:
    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw
    if buf.size != width * height * 4:
        raise ValueError(
            f"a {width}x{height} BGRA image has {width * height * 4} bytes, got {buf.size}"
        )
    return buf.reshape(height, width, 4)


def bgra_to_rgb(raw: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """CARLA's raw BGRA camera buffer -> HxWx3 uint8 RGB (a copy)."""
    return np.ascontiguousarray(_bgra(raw, width, height)[:, :, 2::-1])


def bgra_to_tags(raw: bytes | np.ndarray, width: int, height: int) -> np.ndarray:
    """The semantic camera's raw buffer -> HxW tag ids (the red channel, BGRA index 2)."""
    return np.ascontiguousarray(_bgra(raw, width, height)[:, :, 2])


def tags_to_mask(tags: np.ndarray, roadline: int) -> np.ndarray:
    """HxW tag ids -> 0/255 lane-marking mask."""
    return np.where(tags == roadline, 255, 0).astype(np.uint8)


def bgra_to_mask(raw: bytes | np.ndarray, width: int, height: int, scheme: TagScheme) -> np.ndarray:
    return tags_to_mask(bgra_to_tags(raw, width, height), scheme.roadline)


def intrinsics(width: int, height: int, fov_deg: float) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a CARLA camera: square pixels, principal point at the centre."""
    f = width / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    return f, f, width / 2.0, height / 2.0


def project_world(
    points: np.ndarray, world_to_sensor: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N,3, CARLA/Unreal: x fwd, y right, z up, metres) -> pixels (N,2), depth (N,).

    `world_to_sensor` is the camera actor's `transform.get_inverse_matrix()` (4x4).
    """
    p = np.c_[np.asarray(points, np.float64), np.ones(len(points))] @ np.asarray(world_to_sensor).T
    x, y, z = p[:, 0], p[:, 1], p[:, 2]  # sensor frame: x forward, y right, z up
    with np.errstate(divide="ignore", invalid="ignore"):
        u = camera.fx * y / x + camera.cx
        v = camera.fy * -z / x + camera.cy
    return np.stack([u, v], axis=1), x


def split_polygons(points: list[tuple[float, float, float]]) -> list[np.ndarray]:
    """`Map.get_crosswalks()` lists polygons back to back, each closed by repeating its first
    point; split them into separate (N,3) arrays."""
    polys: list[np.ndarray] = []
    current: list[tuple[float, float, float]] = []
    for p in points:
        if current and np.allclose(p, current[0], atol=1e-3) and len(current) > 2:
            polys.append(np.asarray(current, np.float64))
            current = []
        else:
            current.append(tuple(p))
    if len(current) > 2:
        polys.append(np.asarray(current, np.float64))
    return polys


def remove_polygons(
    mask: np.ndarray, polygons: list[np.ndarray], world_to_sensor: np.ndarray, camera: Camera
) -> np.ndarray:
    """Clear mask pixels inside world-space polygons (crosswalks) seen by the camera."""
    out = mask.copy()
    for poly in polygons:
        uv, depth = project_world(poly, world_to_sensor, camera)
        if (depth > 0.1).sum() < 3:
            continue  # behind the camera
        if (depth <= 0.1).any():
            uv = uv[depth > 0.1]  # partly behind: keep the visible corners (an approximation)
        cv2.fillPoly(out, [np.round(uv * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    return out


def remove_transverse(mask: np.ndarray, camera: Camera, max_angle_deg: float = 45.0) -> np.ndarray:
    """Drop marking blobs that run across the road (stop lines, the bars of a give-way line).

    Each 8-connected blob is projected to the ground plane; if its main axis is more than
    `max_angle_deg` from the vehicle's forward axis and it is clearly elongated, it is removed.
    Lane lines run forward, so they stay, also in curves (their local direction is forward).
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), 8)
    out = mask.copy()
    for label in range(1, n):
        if stats[label, cv2.CC_STAT_AREA] < 12:
            continue
        vs, us = np.nonzero(labels == label)
        ground, valid = camera.pixel_to_ground(np.stack([us, vs], axis=1).astype(np.float64))
        g = ground[valid]
        if len(g) < 12:
            continue
        g = g - g.mean(axis=0)
        evals, evecs = np.linalg.eigh(np.cov(g.T))
        major = evecs[:, 1]
        elongation = math.sqrt(max(evals[1], 1e-12) / max(evals[0], 1e-12))
        angle = math.degrees(math.atan2(abs(major[1]), abs(major[0])))
        if angle > max_angle_deg and elongation > 2.0:
            out[labels == label] = 0
    return out
