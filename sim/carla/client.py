"""Talking to a CARLA server: connecting (with a clear error when nobody answers), the towns it
has, weather presets and vehicle blueprints. Used by the collector and the closed loop."""

from __future__ import annotations

import logging
from typing import Any

from lane_seg.errors import LaneSegError

log = logging.getLogger(__name__)

LOAD_WORLD_TIMEOUT_S = 120.0


def connect(host: str, port: int, timeout: float) -> tuple[Any, str]:
    """(carla.Client, server version); a one-line LaneSegError when nobody answers."""
    try:
        import carla
    except ImportError:
        raise LaneSegError(
            "the CARLA client is not installed; pip install 'lane_seg[carla]' (carla==0.9.16)"
        ) from None
    client = carla.Client(host, port)
    client.set_timeout(timeout)
    try:
        version = client.get_server_version()
    except RuntimeError:
        raise LaneSegError(
            f"no CARLA server at {host}:{port} after {timeout:g} s; "
            "start CarlaUE4.sh, or use --backend planar"
        ) from None
    client_version = client.get_client_version()
    if client_version.split("-")[0] != version.split("-")[0]:
        log.warning("CARLA client %s talks to server %s", client_version, version)
    return client, version


def check_weathers(names: tuple[str, ...]) -> None:
    """Every name must be a carla.WeatherParameters preset (known to the client)."""
    import carla

    presets = sorted(n for n in dir(carla.WeatherParameters) if n[:1].isupper())
    unknown = [n for n in names if n not in presets]
    if unknown:
        raise LaneSegError(
            f"unknown weather preset(s) {', '.join(unknown)}; choose from {', '.join(presets)}"
        )


def resolve_town(requested: str, available: list[str]) -> str:
    """The map name a server knows for `requested`: exact, or its '_Opt' (layered) variant.

    Servers list maps as '/Game/Carla/Maps/Town10HD_Opt'; recent releases ship some towns only
    as '_Opt', so 'Town10HD' means 'Town10HD_Opt' there.
    """
    names = {m.rsplit("/", 1)[-1] for m in available}
    for candidate in (requested, f"{requested}_Opt"):
        if candidate in names:
            return candidate
    raise LaneSegError(
        f"town {requested!r} is not on this CARLA server; it has {', '.join(sorted(names))}"
    )


def load_town(client: Any, town: str, timeout: float) -> Any:
    world = client.get_world()
    name = resolve_town(town, list(client.get_available_maps()))
    if world.get_map().name.rsplit("/", 1)[-1] == name:
        return world
    client.set_timeout(max(timeout, LOAD_WORLD_TIMEOUT_S))
    try:
        # Our settings are not active between episodes, so keeping the world's is right.
        world = client.load_world(name, False)  # reset_settings=False
    finally:
        client.set_timeout(timeout)
    return world


def vehicle_blueprints(library: Any, pattern: str) -> list[Any]:
    bps = [bp for bp in library.filter(pattern) if bp.has_attribute("number_of_wheels")]
    bps = [bp for bp in bps if int(bp.get_attribute("number_of_wheels")) == 4]
    if not bps:
        raise LaneSegError(f"no 4-wheeled vehicle blueprint matches --vehicle {pattern!r}")
    return sorted(bps, key=lambda bp: bp.id)
