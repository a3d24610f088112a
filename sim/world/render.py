"""Render a camera frame and its exact lane-marking mask from a Scene and an ego pose.

Every pixel below the horizon is cast onto the ground plane and converted to Frenet (s, d)
coordinates on the road; the road surface, the markings and their mask are functions of (s, d),
so image and mask come from the same geometry by construction. Markings are box-filtered over
each pixel's footprint on the ground (|ds/du|+|ds/dv|, |dd/du|+|dd/dv|), which gives
anti-aliased paint in the image; the mask marks a pixel when it holds at least half of the paint
it could hold. Upright things (vehicles, barriers, poles, the ego hood) are painted far to near
and clear the mask where they cover the road, so occluded markings are background.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from lane_seg.camera import Camera
from lane_seg.lanes.drawing import draw_lines
from lane_seg.sim.world import dashcam, line_labels
from lane_seg.sim.world.scene import Box, Scene

MIN_VISIBLE_PAINT = 0.2  # share of a pixel paint must cover to be visible, hence labelled
SKY_DAY = np.array([0.45, 0.62, 0.85], np.float32)
SKY_OVERCAST = np.array([0.68, 0.7, 0.74], np.float32)
SKY_DUSK = np.array([0.72, 0.58, 0.5], np.float32)
SKY_NIGHT = np.array([0.02, 0.03, 0.06], np.float32)


@dataclass(frozen=True)
class Pose:
    """Ego pose in the world: the ground point below the camera and the vehicle's heading."""

    x: float
    y: float
    yaw: float


def ego_pose(scene: Scene, s: float, d: float, heading_offset: float = 0.0) -> Pose:
    x, y, h = scene.road.pose(s, d)
    return Pose(float(x), float(y), float(h) + heading_offset)


def _coverage(e: np.ndarray, half: float | np.ndarray, foot: np.ndarray) -> np.ndarray:
    """Fraction of the interval [e-foot/2, e+foot/2] inside [-half, half] (box filter)."""
    lo = np.maximum(e - foot * 0.5, -half)
    hi = np.minimum(e + foot * 0.5, half)
    return np.clip(hi - lo, 0.0, None) / foot


def _dash_coverage(s: np.ndarray, dash: float, period: float, phase: float, foot: np.ndarray):
    if dash <= 0.0:
        return np.ones_like(s)
    foot = np.minimum(foot, period)
    q = np.mod(s - phase, period)
    cov = np.zeros_like(s)
    for shift in (-period, 0.0, period):  # the dash before, this one, the next
        lo = np.maximum(q - foot * 0.5, shift)
        hi = np.minimum(q + foot * 0.5, shift + dash)
        cov += np.clip(hi - lo, 0.0, None)
    return cov / foot


def _texture(tex: np.ndarray, a: np.ndarray, b: np.ndarray, scale_a: float, scale_b: float):
    """Sample a tiling texture at 1-D ground coordinates (metres), `scale` metres per tile."""
    n = tex.shape[0]
    count = a.size
    cols = 1024  # cv2.remap wants 2-D maps of moderate width; BORDER_WRAP does the tiling
    rows = max(1, -(-count // cols))
    map_a = np.zeros(rows * cols, np.float32)
    map_b = np.zeros(rows * cols, np.float32)
    np.multiply(a, n / scale_a, out=map_a[:count], casting="unsafe")
    np.multiply(b, n / scale_b, out=map_b[:count], casting="unsafe")
    out = cv2.remap(
        tex,
        map_b.reshape(rows, cols),
        map_a.reshape(rows, cols),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )
    return out.ravel()[:count]


@functools.lru_cache(maxsize=8)
def _pixel_rays(cam: Camera) -> np.ndarray:
    """Viewing directions (H*W, 3) in the vehicle frame; cached, a drive keeps its camera."""
    r = cam.rotation
    xn = ((np.arange(cam.width) - cam.cx) / cam.fx)[None, :]
    yn = ((np.arange(cam.height) - cam.cy) / cam.fy)[:, None]
    rays = np.empty((cam.height, cam.width, 3), np.float32)
    for k in range(3):
        rays[..., k] = xn * r[0, k] + yn * r[1, k] + r[2, k]
    rays.flags.writeable = False
    return rays.reshape(-1, 3)


class _View:
    """Everything about the pixels that depends on the camera alone (not on where the car is):
    which pixels see the ground, where on the ground (vehicle frame), how far, the ground
    derivatives for footprints, and the sky pixels' angles. Cached: a drive keeps its camera."""

    def __init__(self, cam: Camera, draw_distance: float):
        rays = _pixel_rays(cam)
        dz = rays[:, 2]
        with np.errstate(divide="ignore"):
            t = np.where(dz < -1e-6, -cam.height_m / np.minimum(dz, -1e-6), np.inf)
        dist = t * np.linalg.norm(rays, axis=1)
        ground = dist < draw_distance
        self.g = np.flatnonzero(ground)
        self.sky_idx = np.flatnonzero(~ground)
        r, tg = rays[self.g], t[self.g]
        self.gx, self.gy = cam.x_m + r[:, 0] * tg, cam.y_m + r[:, 1] * tg
        self.dist = dist[self.g]
        self.lateral = np.abs(np.arctan2(r[:, 1], r[:, 0]))
        # d(ground x, y)/d(u, v) from the inverse ground homography, for pixel footprints.
        u, v = self.g % cam.width, self.g // cam.width
        hinv = np.linalg.inv(cam.ground_homography()).astype(np.float32)
        w = hinv[2, 0] * u + hinv[2, 1] * v + hinv[2, 2]
        self.dx_du = (hinv[0, 0] - self.gx * hinv[2, 0]) / w
        self.dx_dv = (hinv[0, 1] - self.gx * hinv[2, 1]) / w
        self.dy_du = (hinv[1, 0] - self.gy * hinv[2, 0]) / w
        self.dy_dv = (hinv[1, 1] - self.gy * hinv[2, 1]) / w
        rs = rays[self.sky_idx]
        self.sky_el = np.arctan2(rs[:, 2], np.hypot(rs[:, 0], rs[:, 1]))
        self.sky_az = np.arctan2(rs[:, 1], rs[:, 0])


@functools.lru_cache(maxsize=4)
def _view(cam: Camera, draw_distance: float) -> _View:
    return _View(cam, draw_distance)


class _Frame:
    """One frame's geometry: the camera's view placed at the ego pose, in Frenet (s, d) on the
    road, with each ground pixel's footprint along s and d."""

    def __init__(self, scene: Scene, cam: Camera, pose: Pose, draw_distance: float):
        self.shape = (cam.height, cam.width)
        view = _view(cam, draw_distance)
        self.g, self.sky_idx = view.g, view.sky_idx
        self.dist, self.lateral = view.dist, view.lateral
        self.sky_el, self.sky_az = view.sky_el, view.sky_az
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        wx = pose.x + c * view.gx - s * view.gy
        wy = pose.y + s * view.gx + c * view.gy
        self.s_ego, _ = scene.road.locate(pose.x, pose.y)  # any distance along the road
        s_map, d_map, ok = scene.road.frenet(wx, wy, self.s_ego + view.gx, iterations=3)
        self.on_road_geom = ok
        self.s = s_map.astype(np.float32)
        self.d = np.where(ok, d_map, 1e3).astype(np.float32)
        # Footprints: rotate the ground derivatives into the road's direction at each pixel.
        phi = scene.road.heading_near(self.s) - pose.yaw
        cp, sp = np.cos(phi), np.sin(phi)
        ds_du, ds_dv = cp * view.dx_du + sp * view.dy_du, cp * view.dx_dv + sp * view.dy_dv
        dd_du, dd_dv = -sp * view.dx_du + cp * view.dy_du, -sp * view.dx_dv + cp * view.dy_dv
        self.foot_s = (np.abs(ds_du) + np.abs(ds_dv) + 1e-4).astype(np.float32)
        self.foot_d = (np.abs(dd_du) + np.abs(dd_dv) + 1e-4).astype(np.float32)


def _surface(scene: Scene, fr: _Frame) -> np.ndarray:
    """Road, shoulder and verge colours (before markings and light)."""
    sf, tex = scene.surface, scene.textures
    s, d, half = fr.s, fr.d, scene.half_width
    grain = _texture(tex["grain"], s, d, 1.5, 1.5) - 0.5
    grain *= np.exp(-fr.foot_s / 0.3)  # fine grain averages out where a pixel covers metres
    blotch = _texture(tex["blotch"], s, d, 60.0, 25.0) - 0.5
    tone = sf["base"] * (1.0 + 0.35 * grain + 0.3 * blotch)
    patches = _texture(tex["blotch"], s + 500.0, d + 7.0, 30.0, 9.0)
    tone *= np.where(patches > 1.0 - sf["patches"], 0.82, 1.0)
    crack = np.abs(_texture(tex["crack"], s, d, 14.0, 7.0) - 0.5)
    tone *= 1.0 - sf["cracks"] * 0.5 * np.clip(1.0 - crack / 0.012, 0.0, 1.0)
    if sf["joint_m"]:  # concrete slabs: dark transverse and longitudinal joints
        js = _coverage(
            np.mod(s + 0.5 * sf["joint_m"], sf["joint_m"]) - 0.5 * sf["joint_m"], 0.015, fr.foot_s
        )
        tone *= 1.0 - 0.45 * js
    for k in range(sf["seams"]):  # tar seams snake along the lanes
        off = -half + (k + 0.7) * scene.lane_width + 0.4 * np.sin(s / (7.0 + 3 * k) + k)
        tone *= 1.0 - 0.4 * _coverage(d - off, 0.02, fr.foot_d)
    rgb = tone[..., None] * np.asarray(sf["tint"], np.float32)
    edge = half + 0.25
    shoulder = (np.abs(d) > edge) & (np.abs(d) <= edge + sf["shoulder_m"])
    verge = np.abs(d) > edge + sf["shoulder_m"]
    rgb[shoulder] *= sf["shoulder_tone"]
    verge_rgb = {
        "grass": (0.22, 0.36, 0.14),
        "dirt": (0.42, 0.34, 0.25),
        "gravel": (0.5, 0.48, 0.45),
        "curb": (0.6, 0.6, 0.58),
    }[sf["verge"]]
    foliage = _texture(tex["foliage"], s, d, 5.0, 5.0)[:, None] + 0.5
    rgb = np.where(verge[:, None], np.asarray(verge_rgb, np.float32) * foliage, rgb)
    return rgb.astype(np.float32)


def _markings(scene: Scene, fr: _Frame, rgb: np.ndarray) -> np.ndarray:
    """Paint the markings onto rgb in place; return the mask (bool) of visible paint."""
    sf = scene.surface
    wear = _texture(scene.textures["wear"], fr.s, fr.d, 9.0, 3.0)
    paint_left = np.clip((wear - sf["wear"]) / 0.12 + 0.5, 0.0, 1.0)  # 0 where worn away
    mask = np.zeros(fr.s.shape, bool)
    for stripes in scene.boundaries:
        for st in stripes:
            near = np.abs(fr.d - st.offset) < st.width + fr.foot_d
            if not near.any():
                continue
            e = fr.d[near] - st.offset
            fd, fs = fr.foot_d[near], fr.foot_s[near]
            across = _coverage(e, st.width * 0.5, fd)
            along = _dash_coverage(fr.s[near], st.dash, st.period, st.phase, fs)
            alpha = across * along * paint_left[near]
            # Labelled: the pixel holds at least half the paint it could (a thin far line still
            # gets its one-pixel trace) and the paint covers enough of it to show in the frame
            # (not a sliver in a pixel whose footprint spans metres near the horizon).
            full = np.minimum(1.0, st.width / fd)
            mask[near] |= (
                (across >= 0.5 * full)
                & (along >= 0.5)
                & (paint_left[near] >= 0.5)
                & (alpha >= MIN_VISIBLE_PAINT)
            )
            color = np.asarray(st.color, np.float32)
            faded = (1.0 - sf["fade"]) * color + sf["fade"] * rgb[near]
            rgb[near] = (1.0 - alpha[:, None]) * rgb[near] + alpha[:, None] * faded
    return mask & fr.on_road_geom


def _shadow_factor(scene: Scene, fr: _Frame) -> np.ndarray:
    shade = np.ones(fr.s.shape, np.float32)
    if not scene.shadows or scene.light["sun"] <= 0.0:
        return shade
    depth = 0.35 + 0.3 * float(scene.light["overcast"])
    soft = _texture(scene.textures["foliage"], fr.s, fr.d, 3.0, 3.0)
    for kind, s0, d0, size_s, size_d in scene.shadows:
        if kind == "blob":
            r = ((fr.s - s0) / size_s) ** 2 + ((fr.d - d0) / size_d) ** 2 + 0.6 * (soft - 0.5)
            inside = np.clip((1.0 - r) * 4.0, 0.0, 1.0)
        elif kind == "stripe":
            e = (fr.s - s0) - d0 * fr.d
            inside = _coverage(e, size_s * 0.5, fr.foot_s)
        else:  # band: a bridge overhead
            inside = (np.abs(fr.s - s0) < size_s * 0.5).astype(np.float32)
        shade *= 1.0 - (1.0 - depth) * inside
    return shade


def _sky_base(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(zenith colour, horizon colour) for the scene's light."""
    light = scene.light
    base = (
        SKY_NIGHT
        if light["time"] == "night"
        else (
            SKY_DUSK
            if light["time"] == "dusk"
            else (SKY_OVERCAST if light["overcast"] else SKY_DAY)
        )
    )
    horizon = base * 0.6 + 0.4 * np.array([0.85, 0.85, 0.85], np.float32) * (light["sun"] + 0.05)
    if scene.weather["fog_m"]:
        base, horizon = (
            base * 0.3 + 0.7 * _fog_color(scene),
            horizon * 0.3 + 0.7 * _fog_color(scene),
        )
    return base, horizon


def _sky(scene: Scene, fr: _Frame) -> np.ndarray:
    """Sky with clouds, and a roadside skyline (trees, hills, buildings) over azimuth."""
    light = scene.light
    el, az = fr.sky_el, fr.sky_az
    base, horizon = _sky_base(scene)
    clouds = _texture(scene.textures["sky"], az * 3.0, el * 6.0, 3.0, 2.0)
    t = np.clip(el / 0.5, 0.0, 1.0)[:, None]
    sky = (horizon * (1 - t) + base * t) * (0.85 + 0.3 * clouds[:, None])
    kind = scene.roadside["skyline"]
    prof = _texture(scene.textures["foliage"], az * 8.0, np.zeros_like(az), 4.0, 1.0)
    if kind == "trees":
        top, color = 0.02 + 0.12 * prof, np.array([0.12, 0.2, 0.1], np.float32)
    elif kind == "hills":
        top, color = 0.01 + 0.06 * prof, np.array([0.3, 0.34, 0.3], np.float32)
    elif kind == "buildings":
        top = 0.02 + 0.1 * np.round(prof * 5) / 5
        color = np.array([0.4, 0.38, 0.37], np.float32)
    else:
        top, color = np.full_like(az, 0.004), np.array([0.35, 0.36, 0.3], np.float32)
    scale = 0.08 if light["time"] == "night" else 0.5 + 0.5 * light["sun"]
    texture = 0.8 + 0.4 * _texture(scene.textures["grain"], az * 10, el * 10, 1.0, 1.0)[:, None]
    skyline = color * scale * texture
    if scene.weather["fog_m"]:
        skyline = skyline * 0.35 + 0.65 * _fog_color(scene)
    return np.where((el < top)[:, None], skyline, sky).astype(np.float32)


def _night_light(scene: Scene, fr: _Frame, rgb: np.ndarray, paint: np.ndarray):
    """Headlights (falloff with distance, a cone ahead) and street lamps; paint retro-reflects."""
    cone = np.clip(1.0 - fr.lateral / 0.45, 0.0, 1.0) ** 1.5
    beam = 2.2 * cone / (1.0 + (fr.dist / 14.0) ** 2)
    if scene.light["street_lights"]:
        beam += 0.35 * (0.5 + 0.5 * np.cos(2 * np.pi * fr.s / 35.0)) ** 6 * np.exp(-fr.dist / 120)
    lit = 0.06 + beam * (1.0 + 1.5 * paint) + 0.08 * paint  # paint retro-reflects
    return rgb * lit[:, None], lit


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
        col = col * k + (1 - k) * _fog_color(scene)
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


def _paint_objects(scene, cam, pose, fr, img, mask) -> None:
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


def _fog_color(scene: Scene) -> np.ndarray:
    if scene.light["time"] == "night":
        return np.array([0.03, 0.03, 0.04], np.float32)
    return np.array([0.72, 0.73, 0.75], np.float32) * (0.6 + 0.4 * scene.light["sun"])


def _camera_effects(
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


def _sensor_effects(img8: np.ndarray, cfg_rng: np.random.Generator, probs: dict) -> np.ndarray:
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


def _line_mask(scene, cam, pose, fr, draw_distance: float, width_px: float) -> np.ndarray:
    lines = label_lines(scene, cam, pose, fr.s_ego, draw_distance, width_px)
    return draw_lines(fr.shape, lines, width_px)


def label_lines(
    scene: Scene,
    cam: Camera,
    pose: Pose,
    s_ego: float | None,
    draw_distance: float,
    width_px: float,
    per_side: int = 2,
) -> list[np.ndarray]:
    """The "lines" label's polylines (`line_labels`): the ego lane's marked boundaries and
    `per_side` more on each side seen from `pose` (`s_ego` along the road, found when None),
    near to far, as far as the camera makes them out."""
    if s_ego is None:
        s_ego, _ = scene.road.locate(pose.x, pose.y)
    _, d_ego = scene.road.locate(pose.x, pose.y, s_ego)
    ego = line_labels.ego_lane_at(scene, d_ego)
    offsets = line_labels.labelled_boundaries(scene, ego, per_side)
    reach = line_labels.reach_m(scene, cam, draw_distance, width_px)
    xy_yaw = (pose.x, pose.y, pose.yaw)
    return line_labels.line_polylines(scene, cam, xy_yaw, s_ego, offsets, reach)


def render(
    scene: Scene,
    cam: Camera,
    pose: Pose,
    rng: np.random.Generator,
    draw_distance: float = 250.0,
    motion_blur_probability: float = 0.3,
    jpeg_probability: float = 0.7,
    hood: bool | None = None,
    label: str = "paint",
    line_width_px: float = 5.0,
    distortion: float = 0.0,
    osd: bool = False,
    lines_over_hood: bool = True,
    hood_style: dashcam.HoodStyle = dashcam.DEFAULT_HOOD,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame: (RGB uint8 HxWx3, mask uint8 HxW).

    `label` "paint": 255 on visible lane-marking paint; "lines": the ego lane's boundaries and
    their neighbours as continuous lines `line_width_px` wide (`line_labels`). `distortion`
    (barrel, > 0) and `osd` (burnt-in text) are what a dashcam adds (`dashcam`); lane lines
    run on over the bonnet unless `lines_over_hood` is False.
    """
    fr = _Frame(scene, cam, pose, draw_distance)
    light = scene.light
    rgb = _surface(scene, fr)
    paint = _markings(scene, fr, rgb)
    if scene.weather["rain"]:  # wet road: darker, with the sky's sheen at grazing angles
        sheen = np.clip(fr.dist / 60.0, 0.0, 1.0)
        rgb = rgb * 0.6 + (0.25 * sheen)[:, None] * (0.4 + 0.6 * light["sun"])
    visible = np.ones(len(fr.g), np.float32)  # how well the camera can see each ground point
    if light["time"] == "night":
        rgb, lit = _night_light(scene, fr, rgb, paint.astype(np.float32))
        visible *= np.clip(lit / 0.3, 0.0, 1.0)
    else:
        rgb *= (0.55 + 0.45 * light["sun"]) * _shadow_factor(scene, fr)[:, None]
    _, horizon = _sky_base(scene)
    if scene.weather["fog_m"]:
        k = np.exp(-fr.dist / scene.weather["fog_m"])
        rgb = rgb * k[:, None] + (1.0 - k[:, None]) * _fog_color(scene)
        visible *= k
    # Haze blends the far road into the horizon, as it is in real frames.
    far = np.clip((fr.dist - 0.6 * draw_distance) / (0.4 * draw_distance), 0.0, 1.0)[:, None]
    rgb = rgb * (1.0 - far) + horizon * far
    h, w = fr.shape
    img = np.empty((h * w, 3), np.float32)
    img[fr.g] = rgb
    img[fr.sky_idx] = _sky(scene, fr)
    img = img.reshape(h, w, 3)
    mask = np.zeros(h * w, np.uint8)
    # Paint the camera cannot make out (unlit at night, lost in fog or haze) is not labelled.
    mask[fr.g] = np.where(paint & (visible * (1.0 - far[:, 0]) > 0.3), 255, 0)
    mask = mask.reshape(h, w)
    _paint_objects(scene, cam, pose, fr, img, mask)
    if label == "lines":
        mask = _line_mask(scene, cam, pose, fr, draw_distance, line_width_px)
    if hood if hood is not None else scene.roadside["hood"]:
        # The bonnet hides paint; lane lines run on to the bottom of the frame over it, as
        # CULane's and TuSimple's annotators draw them.
        hidden = label == "paint" or not lines_over_hood
        dashcam.hood(img, mask if hidden else mask.copy(), rng, hood_style)
    # Paint lost in glare is unlabelled; a lane line is drawn through it, as annotators do.
    img = _camera_effects(scene, cam, img, mask if label == "paint" else mask.copy(), rng)
    if distortion > 0.0:
        img, mask = dashcam.distort(img, mask, distortion)
    img8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if osd:
        dashcam.overlay_text(img8, rng)
    img8 = _sensor_effects(
        img8, rng, {"motion_blur": motion_blur_probability, "jpeg": jpeg_probability}
    )
    return img8, mask
