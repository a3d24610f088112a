"""Roadside props: trees, buildings, walls, signs with lettering, lamp posts, wires, parked cars.

Real dashcam frames are mostly *not* road: foliage, facades with window grids, poles, wires,
signs and lettering, all full of thin bright edges that a model trained on a bare road calls
lane markings. Props put that clutter into the simulator's world, placed in road coordinates
(s, d) so a drive sees each one consistently from frame to frame, drawn far to near with the
other upright things, and textured (foliage, facades) rather than flat.

Each prop is a list of faces; a face is a polygon in world coordinates with a fill: a colour,
optionally a texture tile (noise in [0, 1]) with a contrast, or lettering. Only paint under a
prop loses its "paint" label; lane *lines* are drawn through everything but the ego hood.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field

import numpy as np

FOLIAGE = [(0.13, 0.22, 0.09), (0.2, 0.3, 0.12), (0.3, 0.33, 0.15), (0.4, 0.3, 0.12)]
FACADE = [(0.62, 0.6, 0.56), (0.5, 0.4, 0.32), (0.7, 0.68, 0.62), (0.35, 0.36, 0.4)]
SIGN = [(0.1, 0.45, 0.2), (0.12, 0.25, 0.6), (0.92, 0.92, 0.9), (0.95, 0.75, 0.1)]
CARS = [(0.8, 0.8, 0.82), (0.1, 0.1, 0.12), (0.55, 0.05, 0.05), (0.2, 0.25, 0.45)]
WALL = [(0.55, 0.53, 0.5), (0.45, 0.42, 0.38), (0.3, 0.33, 0.3)]
WINDOW_DAY = (0.12, 0.14, 0.18)
WINDOW_LIT = (1.0, 0.85, 0.5)


@dataclass
class Face:
    """A polygon (N, 3) in world coordinates (x, y, z up) and how to fill it."""

    points: np.ndarray
    color: tuple[float, float, float]
    texture: str = ""  # a key of Scene.textures, or "" for a flat colour
    contrast: float = 0.0
    text: str = ""  # lettering drawn across the face (signs, trucks)
    glow: bool = False  # keeps its brightness at night (lit windows, lamps)
    inset: float = 0.0  # drawn as if this much nearer: details on a face (windows)


@dataclass
class Prop:
    s: float  # where along the road (for culling)
    faces: list[Face] = field(default_factory=list)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _pick(rng: np.random.Generator, palette: list) -> tuple[float, float, float]:
    c = np.asarray(palette[int(rng.integers(len(palette)))]) * rng.uniform(0.8, 1.2)
    return tuple(float(x) for x in np.clip(c, 0.0, 1.0))


def _frame(road, s: float, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World point at (s, d), the road's direction there and its left normal (unit, 2-D)."""
    x, y, h = road.pose(s, d)
    h = float(h)
    return (
        np.array([float(x), float(y)]),
        np.array([math.cos(h), math.sin(h)]),
        np.array([-math.sin(h), math.cos(h)]),
    )


def _quad(p: np.ndarray, along: np.ndarray, half: float, z0: float, z1: float) -> np.ndarray:
    """Vertical rectangle centred on ground point p, spanning +-half along `along`."""
    a, b = p - along * half, p + along * half
    return np.array([[*a, z0], [*b, z0], [*b, z1], [*a, z1]])


def _box_faces(p, fwd, left, length, width, height, color, texture="", contrast=0.0):
    """The four vertical sides and the top of a box standing at ground point p."""
    c = [
        p + fwd * sx * length / 2 + left * sy * width / 2
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    faces = []
    for i in range(4):
        a, b = c[i], c[(i + 1) % 4]
        shade = 0.75 + 0.25 * (i % 2)
        col = tuple(float(x) * shade for x in color)
        faces.append(
            Face(np.array([[*a, 0], [*b, 0], [*b, height], [*a, height]]), col, texture, contrast)
        )
    faces.append(Face(np.array([[*q, height] for q in c]), color, texture, contrast))
    return faces


def _tree(rng, road, s, d) -> Prop:
    p, fwd, left = _frame(road, s, d)
    trunk_h, r = _u(rng, 1.5, 4.0), _u(rng, 1.2, 4.5)
    trunk = Face(_quad(p, left, _u(rng, 0.1, 0.3), 0.0, trunk_h + r * 0.5), (0.22, 0.18, 0.14))
    ang = np.linspace(0, 2 * math.pi, 14, endpoint=False)
    rad = r * rng.uniform(0.75, 1.2, len(ang))
    tall = _u(rng, 0.9, 1.6)
    # The crown is a ragged disc across the road's normal: seen from the road it faces us.
    ring = [
        [
            *(p + left * (rad[i] * math.cos(a) * 0.4) + fwd * rad[i] * math.cos(a)),
            trunk_h + r * tall + rad[i] * tall * math.sin(a),
        ]
        for i, a in enumerate(ang)
    ]
    crown = Face(np.array(ring), _pick(rng, FOLIAGE), "foliage", _u(rng, 0.8, 1.6))
    return Prop(s, [trunk, crown])


def _building(rng, road, s, d, night_lit: float) -> Prop:
    p, fwd, left = _frame(road, s, d)
    length, depth, height = _u(rng, 8, 40), _u(rng, 6, 20), _u(rng, 4, 30)
    side = 1.0 if d > 0 else -1.0
    centre = p + left * side * depth / 2
    color = _pick(rng, FACADE)
    faces = _box_faces(centre, fwd, left, length, depth, height, color, "blotch", _u(rng, 0.2, 0.8))
    # Windows on the face towards the road.
    face_p = p
    rows, cols = max(1, int(height / _u(rng, 2.8, 4.0))), max(1, int(length / _u(rng, 2.0, 4.0)))
    ww, wh = _u(rng, 0.35, 0.75), _u(rng, 0.35, 0.7)
    for i in range(rows):
        for j in range(cols):
            cx = -length / 2 + (j + 0.5) * length / cols
            z0 = (i + 0.5) * height / rows - wh * height / rows / 2
            lit = rng.random() < night_lit
            q = _quad(face_p + fwd * cx, fwd, ww * length / cols / 2, z0, z0 + wh * height / rows)
            faces.append(Face(q, WINDOW_LIT if lit else WINDOW_DAY, glow=lit, inset=0.5))
    return Prop(s, faces)


def _wall(rng, road, s, d, length) -> Prop:
    s_pts = np.arange(s, s + length, 4.0)
    x, y, _ = road.pose(np.append(s_pts, s_pts[-1] + 4.0), d)
    color, top = _pick(rng, WALL), _u(rng, 1.5, 5.0)
    faces = [
        Face(
            np.array(
                [
                    [x[i], y[i], 0],
                    [x[i + 1], y[i + 1], 0],
                    [x[i + 1], y[i + 1], top],
                    [x[i], y[i], top],
                ]
            ),
            color,
            "blotch",
            0.5,
        )
        for i in range(len(s_pts))
    ]
    return Prop(s, faces)


def _words(rng) -> str:
    letters = string.ascii_uppercase + string.digits
    n = int(rng.integers(1, 3))
    return " ".join("".join(rng.choice(list(letters), int(rng.integers(2, 8)))) for _ in range(n))


def _sign(rng, road, s, d) -> Prop:
    p, fwd, left = _frame(road, s, d)
    h0, bh, bw = _u(rng, 1.5, 5.0), _u(rng, 0.6, 2.5), _u(rng, 0.8, 4.5)
    post = Face(_quad(p, left, 0.06, 0.0, h0 + bh), (0.5, 0.5, 0.5))
    board = Face(_quad(p, left, bw / 2, h0, h0 + bh), _pick(rng, SIGN), text=_words(rng))
    return Prop(s, [post, board])


def _lamp(rng, road, s, d, height: float) -> Prop:
    p, fwd, left = _frame(road, s, d)
    side = -1.0 if d > 0 else 1.0  # the arm reaches over the road
    arm = _u(rng, 1.0, 4.0)
    pole = Face(_quad(p, left, 0.08, 0.0, height), (0.42, 0.42, 0.42))
    a, b = p, p + left * side * arm
    arm_face = Face(
        np.array([[*a, height - 0.15], [*b, height - 0.15], [*b, height], [*a, height]]),
        (0.4, 0.4, 0.4),
    )
    return Prop(s, [pole, arm_face])


def _wire(p0: np.ndarray, p1: np.ndarray, height: float, sag: float) -> Face:
    t = np.linspace(0, 1, 12)
    z = height - sag * 4 * t * (1 - t)
    pts = p0[None] * (1 - t[:, None]) + p1[None] * t[:, None]
    line = np.column_stack([pts, z])
    return Face(np.vstack([line, line[::-1] + [0, 0, 0.04]]), (0.08, 0.08, 0.08))


def _parked(rng, road, s, d) -> Prop:
    p, fwd, left = _frame(road, s, d)
    return Prop(
        s,
        _box_faces(
            p, fwd, left, _u(rng, 3.9, 5.0), _u(rng, 1.7, 1.95), _u(rng, 1.4, 1.9), _pick(rng, CARS)
        ),
    )


def sample_props(
    rng: np.random.Generator, road, edge: float, density: float, night_lit: float
) -> list[Prop]:
    """Props along the whole road, both sides, `edge` metres from the centre line to the verge.

    `density` scales how many of each there are (0 = none, 1 = a busy suburban road).
    """
    if density <= 0.0:
        return []
    props: list[Prop] = []
    length = road.length
    for side in (-1.0, 1.0):
        kind = rng.choice(["trees", "town", "open", "walled"], p=[0.4, 0.3, 0.15, 0.15])
        trees = {"trees": 0.12, "town": 0.03, "open": 0.01, "walled": 0.02}[kind] * density
        for s in rng.uniform(0, length, rng.poisson(trees * length)):
            props.append(_tree(rng, road, s, side * (edge + _u(rng, 1.0, 25.0))))
        if kind == "town":
            s = 0.0
            while s < length:
                s += _u(rng, 5.0, 30.0) / density
                props.append(_building(rng, road, s, side * (edge + _u(rng, 3.0, 25.0)), night_lit))
                s += 20.0
        if kind == "walled":
            props.append(_wall(rng, road, 0.0, side * (edge + _u(rng, 0.5, 4.0)), length))
        for s in rng.uniform(0, length, rng.poisson(0.008 * density * length)):
            props.append(_sign(rng, road, s, side * (edge + _u(rng, 0.5, 6.0))))
        if rng.random() < 0.3 * density:
            for s in rng.uniform(0, length, rng.poisson(0.02 * density * length)):
                props.append(_parked(rng, road, s, side * (edge + _u(rng, 0.4, 1.0))))
        if rng.random() < 0.5 * density:  # lamp or utility posts, wired together
            spacing, height = _u(rng, 25.0, 50.0), _u(rng, 7.0, 11.0)
            d = side * (edge + _u(rng, 0.5, 4.0))
            wired = rng.random() < 0.6
            prev = None
            for s in np.arange(_u(rng, 0, spacing), length, spacing):
                props.append(_lamp(rng, road, s, d, height))
                here = _frame(road, s, d)[0]
                if wired and prev is not None:
                    props[-1].faces.append(_wire(prev, here, height - 0.5, _u(rng, 0.3, 1.5)))
                prev = here
    props.sort(key=lambda p: p.s)
    return props
