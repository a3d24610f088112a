"""What a CARLA run is given: the servers (`Servers`), what `lane-seg collect --backend carla`
writes (`CollectJob`) and draws each episode from (`CarlaConfig`), and the closed loop's drive
(`DriveConfig`). `lane_seg.cli.carla_options` makes them from the command line; nothing here
knows one (docs/architecture.md, the layer rule)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_TOWNS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town10HD")
DEFAULT_WEATHERS = (
    "ClearNoon", "CloudyNoon", "WetNoon", "WetCloudyNoon", "SoftRainNoon", "MidRainyNoon",
    "ClearSunset", "CloudySunset", "WetSunset", "SoftRainSunset", "ClearNight", "CloudyNight",
    "WetNight",
)  # fmt: skip


@dataclass(frozen=True)
class Servers:
    """The CARLA servers to use: one host, one or more RPC ports, each with its own Traffic
    Manager port (`tm_port` + slot)."""

    host: str = "127.0.0.1"
    ports: tuple[int, ...] = (2000,)
    timeout: float = 10.0  # seconds to wait for a server
    tm_port: int = 8000


@dataclass(frozen=True)
class CollectJob:
    """Where the frames go and how many: the dataset side of a CARLA collection."""

    out: str
    frames: int
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    id_prefix: str = "carla"


@dataclass(frozen=True)
class DriveConfig:
    """The closed loop against CARLA: which map, for how long, and the spawn draw's seed."""

    town: str | None = None  # None: the map the server has loaded
    seconds: float = 60.0
    seed: int = 0


@dataclass(frozen=True)
class CarlaConfig:
    """What to record and the ranges each episode draws from (recorded as dataset params)."""

    towns: tuple[str, ...] = DEFAULT_TOWNS  # cycled, one per episode
    weathers: tuple[str, ...] = DEFAULT_WEATHERS  # carla.WeatherParameters presets drawn from
    width: int = 1280
    height: int = 720
    fov: tuple[float, float] = (80.0, 100.0)
    cam_x: tuple[float, float] = (0.5, 1.5)  # metres ahead of the vehicle origin
    cam_y: tuple[float, float] = (-0.2, 0.2)  # metres to the right (CARLA's y)
    cam_z: tuple[float, float] = (0.05, 0.4)  # metres above the vehicle's roof
    cam_pitch: tuple[float, float] = (0.0, 8.0)  # degrees, positive looks down
    cam_yaw: tuple[float, float] = (-3.0, 3.0)  # degrees, positive to the right (CARLA)
    every: int = 10
    warmup: int = 30
    frames_per_episode: int = 100
    delta_seconds: float = 0.05
    npc: int = 20
    min_speed: float = 1.0  # m/s; slower frames (waiting at a light) are not recorded
    vehicle: str = "vehicle.*"
    no_crossings: bool = False

    def params(self) -> dict[str, Any]:
        """JSON-shaped (tuples as lists), so it compares equal to what dataset.json holds."""
        return json.loads(json.dumps(asdict(self)))
