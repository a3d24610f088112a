"""Upright things in the frame: vehicles (with rear window and tail lights), barriers, poles
and the props' faces, painted far to near under the scene's light. Each clears the mask where
it covers the road, so occluded markings are background."""

from __future__ import annotations

import bisect
import math

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.sim.world.scene import Box, Scene
from lane_seg.sim.world.sky import fog_color
from lane_seg.sim.world.view import FrameGeometry, Pose


def _draw_polygon(img, mask, pts_uv, color, clear_mask=True) -> None:
    poly = np.round(pts_uv * 16).astype(np.int32)[None]
    cv2.fillPoly(img, poly, color, lineType=cv2.LINE_8, shift=4)
    if clear_mask:
        cv2.fillPoly(mask, poly, 0, lineType=cv2.LINE_8, shift=4)


def _world_to_vehicle(pose: Pose, pts: np.ndarray) -> np.ndarray:
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    dx, dy = pts[:, 0] - pose.x, pts[:, 1] - pose.y
    return np.stack([c * dx + s * dy, -s * dx + c * dy, pts[:, 2]], axis=1)


def _box_corners(scene: Scene, box: Box) -> np.ndarray:
    x, y, h = scene.road.pose(box.s, box.d)
    x, y, h = float(x), float(y), float(h)
    c, s = math.cos(h), math.sin(h)
    pts = []
    for lx in (-box.length / 2, box.length / 2):
        for ly in (-box.width / 2, box.width / 2):
            for z in (0.25, box.height):
                pts.append((x + c * lx - s * ly, y + s * lx + c * ly, z))
    return np.asarray(pts)


def _objects(scene: Scene, cam: Camera, pose: Pose, s_ego: float) -> list:
    """Upright things as (depth, polygon points in the vehicle frame, colour, kind)."""
    items = []
    for box in scene.vehicles:
        pts = _world_to_vehicle(pose, _box_corners(scene, box))
        items.append((float(pts[:, 0].min()), pts, box.color, "vehicle"))
    rs = scene.roadside
    if rs["barrier"]:
        d = rs["barrier_side"] * (scene.half_width + scene.surface["shoulder_m"] + 0.4)
        jersey = rs["barrier_kind"] == "jersey"
        top, bottom = (0.8, 0.0) if jersey else (0.75, 0.45)
        color = (0.62, 0.6, 0.55) if jersey else (0.55, 0.57, 0.6)
        s0 = np.arange(s_ego - 2.0, s_ego + 160.0, 2.0)
        x, y, _ = scene.road.pose(np.append(s0, s0[-1] + 2.0), d)
        for i in range(len(s0)):
            quad = np.array(
                [
                    [x[i], y[i], bottom],
                    [x[i + 1], y[i + 1], bottom],
                    [x[i + 1], y[i + 1], top],
                    [x[i], y[i], top],
                ]
            )
            pts = _world_to_vehicle(pose, quad)
            items.append((float(pts[:, 0].min()), pts, color, "barrier"))
    if rs["poles"]:
        side = -rs["barrier_side"]
        d = side * (scene.half_width + scene.surface["shoulder_m"] + 1.5)
        first = math.ceil(s_ego / rs["pole_spacing"]) * rs["pole_spacing"]
        for s0 in np.arange(first, s_ego + 200.0, rs["pole_spacing"]):
            x, y, h = scene.road.pose(s0, d)
            nx, ny = -math.sin(float(h)) * 0.09, math.cos(float(h)) * 0.09
            quad = np.array(
                [
                    [x - nx, y - ny, 0],
                    [x + nx, y + ny, 0],
                    [x + nx, y + ny, 8.0],
                    [x - nx, y - ny, 8.0],
                ],
                dtype=np.float64,
            )
            pts = _world_to_vehicle(pose, quad)
            items.append((float(pts[:, 0].min()), pts, (0.45, 0.45, 0.45), "pole"))
    return sorted(items, key=lambda item: -item[0])


def _prop_faces(scene: Scene, pose: Pose, s_ego: float) -> list:
    """Faces of the props near s_ego as (depth, points in the vehicle frame, Face)."""
    lo = bisect.bisect_left(scene.prop_s, s_ego - 15.0)
    hi = bisect.bisect_right(scene.prop_s, s_ego + 220.0)
    items = []
    for prop in scene.props[lo:hi]:
        for face in prop.faces:
            pts = _world_to_vehicle(pose, face.points)
            items.append((float(pts[:, 0].min()) - face.inset, pts, face))
    return items


def _light_color(scene: Scene, color, depth: float, glow: bool = False) -> np.ndarray:
    """An object's colour under the scene's light, at night and through fog."""
    col = np.asarray(color, np.float32) * (0.5 + 0.5 * scene.light["sun"])
    if scene.light["time"] == "night" and not glow:
        col = col * (0.05 + 1.5 / (1.0 + (depth / 12.0) ** 2))
    elif glow:
        col = np.asarray(color, np.float32)
    fog = scene.weather["fog_m"]
    if fog:
        k = math.exp(-depth / fog)
        col = col * k + (1 - k) * fog_color(scene)
    return col


def _fill_face(scene, img, mask, uv: np.ndarray, col: np.ndarray, face) -> None:
    """A prop's face: flat, textured (tile stretched over its box) or lettered."""
    h, w = mask.shape
    x0, y0 = np.floor(uv.min(axis=0)).astype(int)
    x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    bx0, by0, bx1, by1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if bx1 <= bx0 or by1 <= by0 or (x1 - x0) * (y1 - y0) > 40 * h * w:
        return
    inside = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
    poly = np.round((uv - (bx0, by0)) * 16).astype(np.int32)[None]
    cv2.fillPoly(inside, poly, 1, lineType=cv2.LINE_8, shift=4)
    sel = inside.astype(bool)
    if not sel.any():
        return
    patch = np.broadcast_to(col, (*inside.shape, 3)).copy()
    if face.texture:
        tile = cv2.resize(scene.textures[face.texture], (x1 - x0, y1 - y0))
        tile = tile[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
        patch *= np.clip(1.0 + face.contrast * (tile - 0.5), 0.05, 3.0)[..., None]
    if face.text and (by1 - by0) >= 6:
        ink = (0.05, 0.05, 0.05) if col.mean() > 0.45 else (0.95, 0.95, 0.95)
        scale = (by1 - by0) / 40.0
        letters = np.zeros(inside.shape, np.uint8)
        cv2.putText(
            letters,
            face.text,
            (1, int((by1 - by0) * 0.7)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            255,
            max(1, int(scale * 2)),
            cv2.LINE_AA,
        )
        a = (letters.astype(np.float32) / 255.0)[..., None]
        patch = patch * (1.0 - a) + np.asarray(ink, np.float32) * a
    region = img[by0:by1, bx0:bx1]
    region[sel] = patch[sel]
    mask[by0:by1, bx0:bx1][sel] = 0


def paint_objects(
    scene: Scene, cam: Camera, pose: Pose, fr: FrameGeometry, img: np.ndarray, mask: np.ndarray
) -> None:
    """Vehicles, barriers, poles and props' faces onto `img`, far to near, each clearing `mask`
    where it covers the road."""
    night = scene.light["time"] == "night"
    items = [(d, p, c, k, None) for d, p, c, k in _objects(scene, cam, pose, fr.s_ego)]
    items += [(d, p, f.color, "face", f) for d, p, f in _prop_faces(scene, pose, fr.s_ego)]
    for depth, pts, color, kind, face in sorted(items, key=lambda item: -item[0]):
        if depth < 0.8:
            continue  # (partly) behind the camera
        uv, z = cam.project(pts)
        if not np.isfinite(uv).all() or (z < 0.3).any():
            continue
        col = _light_color(scene, color, depth, face is not None and face.glow)
        if face is not None:
            _fill_face(scene, img, mask, uv, col, face)
            continue
        hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
        _draw_polygon(img, mask, hull, tuple(float(c) for c in col))
        if kind == "vehicle":
            _vehicle_details(cam, pts, img, night, scene.light["sun"])


def _vehicle_details(cam, pts, img, night, sun) -> None:
    """Rear window and tail lights on the face of the box nearest the camera."""
    rear = pts[np.argsort(pts[:, 0])[:4]]
    uv, _ = cam.project(rear)
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    w, h = hi - lo
    if w < 4 or h < 4:
        return
    window = np.array(
        [
            [lo[0] + 0.15 * w, lo[1] + 0.08 * h],
            [hi[0] - 0.15 * w, lo[1] + 0.08 * h],
            [hi[0] - 0.15 * w, lo[1] + 0.4 * h],
            [lo[0] + 0.15 * w, lo[1] + 0.4 * h],
        ]
    )
    cv2.fillPoly(img, np.round(window * 16).astype(np.int32)[None], (0.05, 0.06, 0.08), shift=4)
    glow = 1.6 if night else 0.7 * (0.5 + 0.5 * sun)
    for x0 in (lo[0] + 0.04 * w, hi[0] - 0.2 * w):
        light = np.array(
            [
                [x0, lo[1] + 0.5 * h],
                [x0 + 0.16 * w, lo[1] + 0.5 * h],
                [x0 + 0.16 * w, lo[1] + 0.62 * h],
                [x0, lo[1] + 0.62 * h],
            ]
        )
        cv2.fillPoly(img, np.round(light * 16).astype(np.int32)[None], (glow, 0.05, 0.03), shift=4)
