"""What the collector and the closed loop both put into a CARLA world: the ego vehicle, and an
RGB and a semantic camera with one mount and one set of intrinsics, paired by frame id."""

from __future__ import annotations

import random
from typing import Any

from lane_seg.errors import LaneSegError
from lane_seg.sim.carla.sync import ActorPool, FramePairer

CAMERAS = {"rgb": "sensor.camera.rgb", "seg": "sensor.camera.semantic_segmentation"}


def spawn_ego(
    world: Any, pool: ActorPool, rng: random.Random, blueprints: list[Any], where: str = ""
) -> tuple[Any, list[Any]]:
    """The ego vehicle (role "hero") at the first free spawn point in an `rng` order, and the
    spawn points left over (for traffic)."""
    points = list(world.get_map().get_spawn_points())
    rng.shuffle(points)
    while points:
        bp = rng.choice(blueprints)
        if bp.has_attribute("role_name"):
            bp.set_attribute("role_name", "hero")
        ego = pool.try_spawn(world, bp, points.pop())
        if ego is not None:
            return ego, points
    raise LaneSegError(f"{where + ': ' if where else ''}no free spawn point for the ego vehicle")


def camera_blueprint(library: Any, kind: str, width: int, height: int, fov: float) -> Any:
    bp = library.find(kind)
    bp.set_attribute("image_size_x", str(width))
    bp.set_attribute("image_size_y", str(height))
    bp.set_attribute("fov", f"{fov:.4f}")
    bp.set_attribute("sensor_tick", "0.0")  # every tick
    return bp


def attach_cameras(
    world: Any, pool: ActorPool, ego: Any, mount: Any, width: int, height: int, fov: float
) -> FramePairer:
    """Both cameras at `mount` on the ego; their images come out of the pairer by frame id."""
    library = world.get_blueprint_library()
    pairer = FramePairer(list(CAMERAS))
    for name, kind in CAMERAS.items():
        sensor = pool.spawn(world, camera_blueprint(library, kind, width, height, fov), mount, ego)
        sensor.listen(pairer.callback(name))
    return pairer
