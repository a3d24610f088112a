"""Randomised road scenes: the ranges (SimConfig) and one drawn scene (Scene).

A Scene holds everything static about a drive: road, lanes and markings, surface, weather,
light, roadside objects and other vehicles. Rendering a frame only adds the ego pose and the
per-frame sensor noise, so a closed-loop drive renders the same world from moving poses.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.settings import from_mapping, load_yaml, setting
from lane_seg.sim.world.dashcam import DEFAULT_HOOD, MIRRORS, HoodStyle
from lane_seg.sim.world.props import Prop, sample_props
from lane_seg.sim.world.road import Road, RoadShape
from lane_seg.sizes import MAX_IMAGE_SIDE

LABELS = ("paint", "lines")
WHITE = (0.92, 0.92, 0.90)
YELLOW = (0.93, 0.74, 0.18)


@dataclass(frozen=True)
class SimConfig:
    """Ranges every scene is drawn from. `lane-seg collect --config FILE` overrides any field."""

    height: int = setting(256, "frame height, px", range=(32, MAX_IMAGE_SIDE))
    width: int = setting(512, "frame width, px", range=(32, MAX_IMAGE_SIDE))
    hfov_deg: tuple[float, float] = setting(
        (48.0, 72.0), "horizontal FOV, degrees", range=(10, 170)
    )
    camera_height_m: tuple[float, float] = setting(
        (1.2, 1.9), "camera above the road, m", range=(0.2, 10.0)
    )
    pitch_deg: tuple[float, float] = setting(
        (0.5, 7.0), "camera pitch, degrees, + looks down", range=(-20.0, 45.0)
    )
    yaw_deg: tuple[float, float] = setting((-2.5, 2.5), "camera yaw, degrees", range=(-30, 30))
    roll_deg: tuple[float, float] = setting((-1.5, 1.5), "camera roll, degrees", range=(-30, 30))
    lanes: tuple[int, int] = setting((1, 4), "lanes on the road", range=(1, 8))
    lane_width_m: tuple[float, float] = setting((2.8, 3.9), "lane width, m", range=(1.5, 8.0))
    max_curvature: float = setting(1 / 120, "largest road curvature, 1/m", range=(0.0, 0.1))
    line_width_m: tuple[float, float] = setting(
        (0.10, 0.22), "painted line width, m", range=(0.02, 1.0)
    )
    dash_m: tuple[float, float] = setting((1.5, 6.0), "dash length, m", range=(0.2, 50.0))
    gap_m: tuple[float, float] = setting((3.0, 12.0), "gap between dashes, m", range=(0.2, 50.0))
    yellow_probability: float = setting(0.35, "probability", range=(0.0, 1.0))
    double_probability: float = setting(0.25, "probability", range=(0.0, 1.0))
    wear: tuple[float, float] = setting((0.0, 0.45), "paint wear, 0..1", range=(0.0, 1.0))
    fade: tuple[float, float] = setting((0.0, 0.6), "paint fading, 0..1", range=(0.0, 1.0))
    concrete_probability: float = setting(0.3, "probability", range=(0.0, 1.0))
    night_probability: float = setting(0.12, "probability", range=(0.0, 1.0))
    dusk_probability: float = setting(0.15, "probability", range=(0.0, 1.0))
    rain_probability: float = setting(0.15, "probability", range=(0.0, 1.0))
    fog_probability: float = setting(0.1, "probability", range=(0.0, 1.0))
    glare_probability: float = setting(0.15, "probability", range=(0.0, 1.0))
    shadow_probability: float = setting(0.6, "probability", range=(0.0, 1.0))
    vehicles: tuple[int, int] = setting((0, 4), "other vehicles in view", range=(0, 20))
    barrier_probability: float = setting(0.5, "probability", range=(0.0, 1.0))
    pole_probability: float = setting(0.5, "probability", range=(0.0, 1.0))
    hood_probability: float = setting(0.25, "probability", range=(0.0, 1.0))
    # The bonnet's outline and finish (dashcam.HoodStyle), fractions of the frame height.
    hood_top: tuple[float, float] = setting(
        DEFAULT_HOOD.top, "bonnet edge, highest row / frame height", range=(0.3, 1.0)
    )
    hood_bulge: tuple[float, float] = setting(
        DEFAULT_HOOD.bulge, "how much lower the edge is at the sides", range=(0.0, 0.7)
    )
    hood_paint: tuple[float, float] = setting(
        DEFAULT_HOOD.paint, "the bonnet colour's channels", range=(0.0, 1.0)
    )
    hood_gloss: tuple[float, float] = setting(
        DEFAULT_HOOD.gloss, "how strongly it mirrors the scene", range=(0.0, 1.0)
    )
    hood_mirror: str = setting(
        DEFAULT_HOOD.mirror, "what the bonnet reflects (sim.dashcam.HoodStyle)", choices=MIRRORS
    )
    hood_blur: float = setting(DEFAULT_HOOD.blur, "mirror image blur, px", range=(0.1, 50.0))
    motion_blur_probability: float = setting(0.3, "probability", range=(0.0, 1.0))
    jpeg_probability: float = setting(0.7, "probability", range=(0.0, 1.0))
    ego_offset_sigma_m: float = setting(0.35, "ego offset from the lane centre, m", range=(0, 2))
    ego_heading_sigma_deg: float = setting(1.5, "ego heading error, degrees", range=(0, 20))
    draw_distance_m: float = setting(250.0, "how far the road is drawn, m", range=(20, 500))
    # fy / fx: frames of other aspect ratios stretched to the model's input have non-square
    # pixels (CULane's 1640x590 -> 512x256 gives 1.39, comma10k's 1164x874 gives 0.67).
    pixel_aspect: tuple[float, float] = setting((1.0, 1.0), "fy / fx", range=(0.25, 4.0))
    label: str = setting("paint", "what the mask marks (render.render)", choices=LABELS)
    line_width_px: float = setting(5.0, "width of lines labels, px", range=(1.0, 50.0))
    lines_over_hood: bool = True  # "lines" labels run on over the bonnet (CULane, TuSimple)
    props: float = setting(0.0, "roadside props (sim.props): 0 none, 1 a busy road", range=(0, 4))
    distortion_probability: float = setting(0.0, "barrel lens distortion", range=(0.0, 1.0))
    distortion: tuple[float, float] = setting(
        (0.05, 0.35), "barrel distortion strength k (sim.dashcam)", range=(0.0, 2.0)
    )
    osd_probability: float = setting(0.0, "burnt-in timestamp / speed text", range=(0.0, 1.0))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"{f.name} must be a range [low, high], got {list(value)}")

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> SimConfig:
        """The defaults, with any subset overridden by a YAML file (`config/sim.yaml` lists all)."""
        return cls() if path is None else load_yaml(cls, path, "simulator config")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "simulator config") -> SimConfig:
        return from_mapping(cls, data, source)

    def hood_style(self) -> HoodStyle:
        return HoodStyle(
            top=self.hood_top,
            bulge=self.hood_bulge,
            paint=self.hood_paint,
            gloss=self.hood_gloss,
            mirror=self.hood_mirror,
            blur=self.hood_blur,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass
class Stripe:
    """One painted line, `offset` metres left of the road centre line."""

    offset: float
    width: float
    color: tuple[float, float, float]
    dash: float = 0.0  # 0 = solid
    period: float = 1.0
    phase: float = 0.0


@dataclass
class Box:
    """A vehicle or obstacle standing on the road, placed in Frenet coordinates."""

    s: float
    d: float
    length: float
    width: float
    height: float
    color: tuple[float, float, float]
    speed: float = 0.0


@dataclass
class Scene:
    road: Road
    lane_width: float
    n_lanes: int
    ego_lane: int
    boundaries: list[list[Stripe]]  # per lane boundary (right to left), its stripes
    surface: dict[str, Any]
    light: dict[str, Any]
    weather: dict[str, Any]
    roadside: dict[str, Any]
    shadows: list[tuple[str, float, float, float, float]]  # kind, s, d, size_s, size_d
    vehicles: list[Box]
    textures: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    props: list[Prop] = field(repr=False, default_factory=list)  # sorted by s

    @property
    def prop_s(self) -> list[float]:
        return [p.s for p in self.props]

    def lane_center(self, lane: int) -> float:
        """Offset of a lane's centre from the road centre line (lane 0 is the rightmost)."""
        return (lane + 0.5 - self.n_lanes / 2) * self.lane_width

    @property
    def half_width(self) -> float:
        return self.n_lanes * self.lane_width / 2

    def summary(self) -> dict[str, Any]:
        """JSON-friendly scene parameters for meta.jsonl."""
        kinds = []
        for stripes in self.boundaries:
            if not stripes:
                kinds.append("none")
                continue
            style = "double" if len(stripes) == 2 else ("dashed" if stripes[0].dash else "solid")
            kinds.append(f"{style}-{'yellow' if stripes[0].color == YELLOW else 'white'}")
        return {
            "lanes": self.n_lanes,
            "lane_width_m": round(self.lane_width, 3),
            "ego_lane": self.ego_lane,
            "boundaries": kinds,
            "max_abs_curvature": round(float(np.abs(self.road.curvature).max()), 5),
            "surface": self.surface["kind"],
            "time": self.light["time"],
            "rain": self.weather["rain"],
            "fog_m": self.weather["fog_m"],
            "glare": self.light["glare"] is not None,
            "vehicles": len(self.vehicles),
            "barrier": self.roadside["barrier"],
        }


@functools.lru_cache(maxsize=16)
def _noise_bank(beta: float, count: int = 12, size: int = 128) -> tuple[np.ndarray, ...]:
    """A fixed bank of tiling noise tiles per spectrum (seeded, identical in every process)."""
    rng = np.random.default_rng(int(beta * 1000))
    return tuple(periodic_noise(rng, size, beta) for _ in range(count))


def noise_tile(rng: np.random.Generator, beta: float) -> np.ndarray:
    """A tile from the bank in one of its 8 orientations: cheap per scene, still varied."""
    bank = _noise_bank(beta)
    tile = bank[int(rng.integers(len(bank)))]
    tile = np.rot90(tile, int(rng.integers(4)))
    return np.ascontiguousarray(tile[:, ::-1] if rng.random() < 0.5 else tile)


def periodic_noise(rng: np.random.Generator, size: int = 128, beta: float = 2.0) -> np.ndarray:
    """Seamlessly tiling 1/f^beta noise in [0, 1]; tiles never show seams that look like lines."""
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) / radius ** (beta / 2)
    spectrum[0, 0] = 0.0
    n = np.real(np.fft.ifft2(spectrum))
    n = (n - n.min()) / (n.max() - n.min() + 1e-9)
    return n.astype(np.float32)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def sample_camera(rng: np.random.Generator, cfg: SimConfig) -> Camera:
    cam = Camera.from_fov(
        cfg.width,
        cfg.height,
        _u(rng, cfg.hfov_deg),
        height_m=_u(rng, cfg.camera_height_m),
        pitch_deg=_u(rng, cfg.pitch_deg),
        yaw_deg=_u(rng, cfg.yaw_deg),
        roll_deg=_u(rng, cfg.roll_deg),
    )
    if cfg.pixel_aspect == (1.0, 1.0):
        return cam  # no draw: configs without it render as before
    return dataclasses.replace(cam, fy=cam.fx * _u(rng, cfg.pixel_aspect))


def _boundary_stripes(
    rng: np.random.Generator, cfg: SimConfig, index: int, n_lanes: int, offset: float, two_way: bool
) -> list[Stripe]:
    width = _u(rng, cfg.line_width_m)
    outer = index in (0, n_lanes)
    centre_of_two_way = two_way and index == n_lanes // 2
    if outer:
        if rng.random() < 0.12:
            return []  # unmarked edge: asphalt meets the shoulder
        color = YELLOW if index == n_lanes and rng.random() < cfg.yellow_probability else WHITE
        return [Stripe(offset, width * 1.2, color)]
    if centre_of_two_way:
        if rng.random() < cfg.double_probability * 2:
            gap = rng.uniform(0.08, 0.2)
            dash = _u(rng, cfg.dash_m) if rng.random() < 0.3 else 0.0
            return [
                Stripe(offset - (gap + width) / 2, width, YELLOW, dash, dash + _u(rng, cfg.gap_m)),
                Stripe(offset + (gap + width) / 2, width, YELLOW),
            ]
        return [Stripe(offset, width, YELLOW)]
    dash, gap = _u(rng, cfg.dash_m), _u(rng, cfg.gap_m)
    if rng.random() < 0.15:
        return [Stripe(offset, width, WHITE)]  # solid separator (no lane change)
    return [Stripe(offset, width, WHITE, dash, dash + gap, rng.uniform(0, dash + gap))]


def _light(rng: np.random.Generator, cfg: SimConfig) -> dict[str, Any]:
    r = rng.random()
    time = (
        "night"
        if r < cfg.night_probability
        else ("dusk" if r < cfg.night_probability + cfg.dusk_probability else "day")
    )
    overcast = rng.random() < 0.4
    glare = None
    if time != "night" and rng.random() < cfg.glare_probability:
        # azimuth, elevation (rad), strength
        glare = (rng.uniform(-0.5, 0.5), rng.uniform(0.02, 0.25), rng.uniform(0.3, 0.9))
    return {
        "time": time,
        "overcast": overcast,
        "sun": 1.0 if time == "day" else (0.55 if time == "dusk" else 0.0),
        "exposure": rng.uniform(0.75, 1.3),
        "white_balance": [float(x) for x in rng.uniform(0.88, 1.12, 3)],
        "gamma": rng.uniform(0.85, 1.2),
        "glare": glare,
        "sun_azimuth": rng.uniform(-math.pi, math.pi),
        "street_lights": time == "night" and rng.random() < 0.5,
    }


def _shadows(rng: np.random.Generator, cfg: SimConfig, road: Road, half: float) -> list:
    shadows = []
    if rng.random() >= cfg.shadow_probability:
        return shadows
    for _ in range(int(rng.integers(2, 14))):  # trees beside the road
        side = rng.choice([-1.0, 1.0])
        shadows.append(
            (
                "blob",
                rng.uniform(0, road.length),
                side * (half + rng.uniform(-1.5, 4)),
                rng.uniform(2, 9),
                rng.uniform(1.5, 6),
            )
        )
    for _ in range(int(rng.integers(0, 5))):  # poles and signs: thin stripes across the road
        shadows.append(
            (
                "stripe",
                rng.uniform(0, road.length),
                rng.uniform(-0.8, 0.8),
                rng.uniform(0.15, 0.5),
                0.0,
            )
        )
    if rng.random() < 0.3:  # a bridge
        shadows.append(("band", rng.uniform(40, road.length), 0.0, rng.uniform(6, 20), 0.0))
    return shadows


def sample_scene(rng: np.random.Generator, cfg: SimConfig, road: Road | None = None) -> Scene:
    if road is None:
        road = Road.random(rng, RoadShape(max_curvature=cfg.max_curvature))
    n_lanes = int(rng.integers(cfg.lanes[0], cfg.lanes[1] + 1))
    lane_width = _u(rng, cfg.lane_width_m)
    two_way = n_lanes in (2, 4) and rng.random() < 0.4
    half = n_lanes * lane_width / 2
    boundaries = [
        _boundary_stripes(rng, cfg, i, n_lanes, -half + i * lane_width, two_way)
        for i in range(n_lanes + 1)
    ]
    wear, fade = _u(rng, cfg.wear), _u(rng, cfg.fade)
    concrete = rng.random() < cfg.concrete_probability
    base = rng.uniform(0.55, 0.72) if concrete else rng.uniform(0.18, 0.42)
    surface = {
        "kind": "concrete" if concrete else "asphalt",
        "base": base,
        "tint": [float(x) for x in rng.uniform(0.96, 1.04, 3)],
        "wear": wear,
        "fade": fade,
        "joint_m": rng.uniform(4.0, 6.0) if concrete else 0.0,
        "seams": int(rng.integers(0, 4)),
        "patches": rng.uniform(0.0, 0.35),
        "cracks": rng.uniform(0.0, 1.0),
        "shoulder_m": rng.uniform(0.3, 3.0),
        "shoulder_tone": rng.uniform(0.8, 1.3),
        "verge": rng.choice(["grass", "dirt", "gravel", "curb"]),
    }
    light = _light(rng, cfg)
    rain = bool(rng.random() < cfg.rain_probability)
    fog_m = float(rng.uniform(40, 160)) if rng.random() < cfg.fog_probability else 0.0
    roadside = {
        "barrier": bool(rng.random() < cfg.barrier_probability),
        "barrier_side": float(rng.choice([-1.0, 1.0])),
        "barrier_kind": str(rng.choice(["jersey", "guardrail"])),
        "poles": bool(rng.random() < cfg.pole_probability),
        "pole_spacing": rng.uniform(25, 60),
        "skyline": str(rng.choice(["trees", "hills", "buildings", "flat"])),
        "hood": bool(rng.random() < cfg.hood_probability),
    }
    scene = Scene(
        road=road,
        lane_width=lane_width,
        n_lanes=n_lanes,
        ego_lane=int(rng.integers(0, n_lanes)),
        boundaries=boundaries,
        surface=surface,
        light=light,
        weather={"rain": rain, "fog_m": fog_m},
        roadside=roadside,
        shadows=_shadows(rng, cfg, road, half),
        vehicles=[],
    )
    scene.textures = {
        "grain": noise_tile(rng, 0.6),
        "blotch": noise_tile(rng, 2.6),
        "wear": noise_tile(rng, 1.6),
        "crack": noise_tile(rng, 2.2),
        "sky": noise_tile(rng, 2.4),
        "foliage": noise_tile(rng, 1.2),
    }
    if cfg.props > 0.0:
        edge = half + surface["shoulder_m"] + 0.5
        lit = 0.35 if light["time"] in ("night", "dusk") else 0.0
        scene.props = sample_props(rng, road, edge, cfg.props, lit)
    return scene


def place_vehicles(
    rng: np.random.Generator, cfg: SimConfig, scene: Scene, s_ego: float, count: int | None = None
) -> None:
    """Put other vehicles in lanes ahead of s_ego (they occlude markings)."""
    if count is None:
        count = int(rng.integers(cfg.vehicles[0], cfg.vehicles[1] + 1))
    palette = [
        (0.8, 0.8, 0.82),
        (0.1, 0.1, 0.12),
        (0.55, 0.05, 0.05),
        (0.2, 0.25, 0.45),
        (0.45, 0.45, 0.47),
        (0.9, 0.9, 0.9),
        (0.3, 0.3, 0.28),
    ]
    for _ in range(count):
        truck = rng.random() < 0.2
        lane = int(rng.integers(0, scene.n_lanes))
        ahead = rng.uniform(7, 90)
        if lane == scene.ego_lane and ahead < 12:
            ahead += 12
        scene.vehicles.append(
            Box(
                s=s_ego + ahead,
                d=scene.lane_center(lane) + rng.normal(0, 0.25),
                length=rng.uniform(8, 14) if truck else rng.uniform(3.8, 5.0),
                width=rng.uniform(2.3, 2.55) if truck else rng.uniform(1.65, 1.95),
                height=rng.uniform(2.8, 3.8) if truck else rng.uniform(1.35, 1.9),
                color=palette[int(rng.integers(len(palette)))],
            )
        )
