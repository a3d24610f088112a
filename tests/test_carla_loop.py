"""The CARLA loop: against a live server when one answers (skipped otherwise, with the reason),
and against a scripted stand-in for the carla module that checks what the loop does with the
server: synchronous mode restored and actors destroyed on every exit path, and the sign and
scale of carla.VehicleControl."""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.lane_control import ControllerConfig
from lane_seg.sim.carla import loop as carla_loop
from lane_seg.sim.loop.closed_loop import GroundTruthPerception

sys.path.insert(0, str(Path(__file__).parent))
from test_lane_geometry import synthetic_mask  # noqa: E402

ROADLINE = 24  # CARLA >= 0.9.14


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_with_no_server_says_so(tmp_path, capsys):
    port = closed_port()
    argv = ["sim", "--backend", "carla", "--port", str(port), "--timeout", "1"]
    assert main([*argv, "--out", str(tmp_path / "c")]) == 2
    assert f"no CARLA server at 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.carla
def test_live_server_drive(tmp_path):
    host = os.environ.get("CARLA_HOST", "127.0.0.1")
    port = int(os.environ.get("CARLA_PORT", "2000"))
    try:
        carla_loop.connect(host, port, 2.0)
    except LaneSegError as exc:
        pytest.skip(f"no CARLA server answers: {exc}")
    args = argparse.Namespace(host=host, port=port, timeout=10.0, town=None, seconds=10.0)
    report = carla_loop.run_carla(args, GroundTruthPerception(), ControllerConfig(), tmp_path)
    assert report["worlds"][0]["frames"] > 0
    assert report["summary"]["max_abs_lateral_error_m"] < 1.0


# --------------------------------------------------------------------------- a stand-in server


class Vec:
    def __init__(self, x=0.0, y=0.0, z=0.0):
        self.x, self.y, self.z = x, y, z


class Location(Vec):
    pass


class Rotation:
    def __init__(self, pitch=0.0, yaw=0.0, roll=0.0):
        self.pitch, self.yaw, self.roll = pitch, yaw, roll


class Transform:
    def __init__(self, location=None, rotation=None):
        self.location = location or Location()
        self.rotation = rotation or Rotation()

    def get_forward_vector(self):
        y = math.radians(self.rotation.yaw)
        return Vec(math.cos(y), math.sin(y))

    def get_right_vector(self):
        y = math.radians(self.rotation.yaw)
        return Vec(-math.sin(y), math.cos(y))


class VehicleControl:
    def __init__(self, throttle=0.0, steer=0.0, brake=0.0):
        self.throttle, self.steer, self.brake = throttle, steer, brake


def fake_carla_module() -> types.ModuleType:
    m = types.ModuleType("carla")
    m.Location, m.Rotation, m.Transform, m.VehicleControl = (
        Location,
        Rotation,
        Transform,
        VehicleControl,
    )
    return m


class Settings:
    def __init__(self, sync=False, delta=None):
        self.synchronous_mode, self.fixed_delta_seconds = sync, delta


class Blueprint:
    def __init__(self, bid):
        self.id, self.attrs = bid, {"number_of_wheels": "4"}

    def has_attribute(self, k):
        return k in self.attrs

    def get_attribute(self, k):
        return self.attrs[k]

    def set_attribute(self, k, v):
        self.attrs[k] = v


class Library:
    def find(self, kind):
        return Blueprint(kind)

    def filter(self, pattern):
        return [Blueprint("vehicle.test.car")]


class Image:
    def __init__(self, frame, raw):
        self.frame, self.raw_data = frame, raw


class Actor:
    def __init__(self, world, bp):
        self.world, self.bp, self.destroyed, self.callback = world, bp, False, None
        self.controls = []

    def destroy(self):
        self.destroyed = True

    # sensors
    def listen(self, cb):
        self.callback = cb

    def stop(self):
        pass

    # the ego
    def get_physics_control(self):
        return types.SimpleNamespace(wheels=[types.SimpleNamespace(max_steer_angle=70.0)])

    def get_transform(self):
        return Transform(Location(0.0, -self.world.offset, 0.0), Rotation())

    def get_velocity(self):
        return Vec(10.0, 0.0)

    def apply_control(self, c):
        self.controls.append(c)


class Map:
    def __init__(self, lane_width):
        self.lane_width = lane_width

    def get_spawn_points(self):
        return [Transform() for _ in range(3)]

    def get_waypoint(self, loc):
        return types.SimpleNamespace(
            transform=Transform(Location(loc.x, 0.0, 0.0), Rotation()), lane_width=self.lane_width
        )


class World:
    """Ego `offset` metres left of the lane centre (CARLA's y is to the right), standing still."""

    def __init__(self, offset, fail_at=None):
        self.settings = Settings(False, None)
        self.applied = []
        self.actors = []
        self.frame = 0
        self.offset = offset
        self.fail_at = fail_at
        cam = carla_loop.carla_camera()
        mask = synthetic_mask(cam, offset=-offset)  # the lane centre is to the vehicle's right
        bgra = np.zeros((cam.height, cam.width, 4), np.uint8)
        bgra[..., 2] = np.where(mask > 0, ROADLINE, 7)  # tag in the red channel
        self.seg = bgra.tobytes()
        self.rgb = np.zeros_like(bgra).tobytes()

    def get_settings(self):
        return Settings(self.settings.synchronous_mode, self.settings.fixed_delta_seconds)

    def apply_settings(self, s):
        self.applied.append((s.synchronous_mode, s.fixed_delta_seconds))
        self.settings = Settings(s.synchronous_mode, s.fixed_delta_seconds)

    def get_blueprint_library(self):
        return Library()

    def get_map(self):
        return Map(3.5)

    def try_spawn_actor(self, bp, tf):
        a = Actor(self, bp)
        self.actors.append(a)
        return a

    def spawn_actor(self, bp, tf, attach_to=None):
        return self.try_spawn_actor(bp, tf)

    def tick(self, timeout=None):
        self.frame += 1
        if self.fail_at is not None and self.frame >= self.fail_at:
            raise RuntimeError("time-out while waiting for the simulator")
        for a in self.actors:
            if a.callback is not None:
                raw = self.seg if "semantic" in a.bp.id else self.rgb
                a.callback(Image(self.frame, raw))
        return self.frame


@pytest.fixture
def fake_server(monkeypatch):
    monkeypatch.setitem(sys.modules, "carla", fake_carla_module())

    def install(world):
        client = types.SimpleNamespace(get_world=lambda: world)
        monkeypatch.setattr(carla_loop, "connect", lambda *a: (client, "0.9.16"))
        return world

    return install


def _args(seconds=1.0):
    return argparse.Namespace(host="h", port=1, timeout=1.0, town=None, seconds=seconds)


def test_fake_server_drive_steers_back_and_cleans_up(fake_server, tmp_path):
    world = fake_server(World(offset=0.5))  # 0.5 m left of the lane centre
    report = carla_loop.run_carla(_args(1.0), GroundTruthPerception(), ControllerConfig(), tmp_path)
    ego = world.actors[0]
    assert len(ego.controls) == 10  # 1 s at 10 Hz, one control per tick
    assert all(c.steer > 0 for c in ego.controls[2:])  # CARLA: + steer turns right
    assert all(0.0 <= c.steer <= 1.0 and c.brake == 0.0 for c in ego.controls)
    m = report["worlds"][0]
    assert m["max_abs_lateral_error_m"] == pytest.approx(0.5, abs=1e-6)
    assert m["estimate_abs_error_m"] < 0.1
    assert world.applied[0] == (True, carla_loop.DELTA_S)  # synchronous at the fixed step
    assert world.settings.synchronous_mode is False  # restored
    assert all(a.destroyed for a in world.actors)
    assert (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("when", ["tick", "perception"])
def test_fake_server_restores_settings_and_destroys_actors_on_errors(fake_server, tmp_path, when):
    world = fake_server(World(offset=0.0, fail_at=3 if when == "tick" else None))

    def broken(image, mask):
        raise KeyboardInterrupt  # Ctrl-C in the middle of a frame

    perception = GroundTruthPerception() if when == "tick" else broken
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        carla_loop.run_carla(_args(1.0), perception, ControllerConfig(), tmp_path)
    assert world.settings.synchronous_mode is False
    assert world.actors and all(a.destroyed for a in world.actors)


def test_vehicle_control_mapping():
    carla = fake_carla_module()
    left = carla_loop.to_vehicle_control(carla, math.radians(7.0), 1.5, 70.0)
    assert left.steer == pytest.approx(-0.1) and left.throttle == pytest.approx(0.5)
    brake = carla_loop.to_vehicle_control(carla, 0.0, -3.0, 70.0)
    assert brake.brake == pytest.approx(0.5) and brake.throttle == 0.0
    assert carla_loop.to_vehicle_control(carla, -2.0, 0.0, 70.0).steer == 1.0  # clipped
