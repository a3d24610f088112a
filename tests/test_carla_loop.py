"""The CARLA loop: against a live server when one answers (skipped otherwise, with the reason),
and against a stand-in client and world (the carla wheel's own Transform, VehicleControl and
settings types) in which the car moves by the controls it gets: it steers back to the lane
centre, synchronous mode is restored and actors destroyed on every exit path, and
carla.VehicleControl has the right sign and scale."""

from __future__ import annotations

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
from lane_seg.lanes.control import ControllerConfig
from lane_seg.sim.carla import loop as carla_loop
from lane_seg.sim.carla.options import DriveConfig, Servers
from lane_seg.sim.loop.closed_loop import GroundTruthPerception

sys.path.insert(0, str(Path(__file__).parent))
from test_lane_geometry import synthetic_mask  # noqa: E402

carla = pytest.importorskip("carla")

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
    at, drive = Servers(host, (port,), 10.0), DriveConfig(seconds=10.0)
    report = carla_loop.run_carla(at, drive, GroundTruthPerception(), ControllerConfig(), tmp_path)
    assert report["worlds"][0]["frames"] > 0
    assert report["summary"]["max_abs_lateral_error_m"] < 1.0


# --------------------------------------------------------------------------- a stand-in world


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


class Sensor:
    def __init__(self, bp):
        self.bp, self.callback, self.destroyed = bp, None, False

    def listen(self, cb):
        self.callback = cb

    def stop(self):
        pass

    def destroy(self):
        self.destroyed = True


class Ego:
    """A kinematic bicycle on a straight road along CARLA's x axis (lane centre y = 0; CARLA's y
    points right), driven by the controls it is given, one world tick at a time."""

    WHEELBASE_M, MAX_STEER_DEG = 2.8, 70.0

    def __init__(self, bp, y: float, speed: float):
        self.bp, self.x, self.y, self.yaw, self.speed = bp, 0.0, y, 0.0, speed
        self.controls: list = []
        self.destroyed = False

    def destroy(self):
        self.destroyed = True

    def get_physics_control(self):
        wheel = types.SimpleNamespace(max_steer_angle=self.MAX_STEER_DEG)
        return types.SimpleNamespace(wheels=[wheel])

    def get_transform(self):
        return carla.Transform(
            carla.Location(x=self.x, y=self.y), carla.Rotation(yaw=math.degrees(self.yaw))
        )

    def get_velocity(self):
        return carla.Vector3D(self.speed * math.cos(self.yaw), self.speed * math.sin(self.yaw), 0)

    def apply_control(self, c):
        assert isinstance(c, carla.VehicleControl)
        self.controls.append(c)

    def step(self, dt: float) -> None:
        c = self.controls[-1] if self.controls else carla.VehicleControl()
        self.speed = max(0.0, self.speed + (3.0 * c.throttle - 6.0 * c.brake) * dt)
        wheel = math.radians(c.steer * self.MAX_STEER_DEG)  # CARLA: + steer turns right
        self.yaw += self.speed * math.tan(wheel) / self.WHEELBASE_M * dt
        self.x += self.speed * math.cos(self.yaw) * dt
        self.y += self.speed * math.sin(self.yaw) * dt


class Map:
    def get_spawn_points(self):
        return [carla.Transform() for _ in range(3)]

    def get_waypoint(self, loc):
        """The lane centre beside `loc`: a waypoint on y = 0, heading along x, 3.5 m wide."""
        return types.SimpleNamespace(
            transform=carla.Transform(carla.Location(x=loc.x), carla.Rotation()), lane_width=3.5
        )


class World:
    """The ego starts `offset` metres left of the lane centre at 10 m/s; every tick moves it by
    its last control and renders the semantic camera from where it now is."""

    def __init__(self, offset: float, fail_at: int | None = None):
        self.settings = carla.WorldSettings()
        self.applied: list[tuple[bool, float | None]] = []
        self.sensors: list[Sensor] = []
        self.ego: Ego | None = None
        self.frame = 0
        self.offset, self.fail_at = offset, fail_at
        self.cam = carla_loop.carla_camera()

    def get_settings(self):
        s = carla.WorldSettings()
        s.synchronous_mode = self.settings.synchronous_mode
        s.fixed_delta_seconds = self.settings.fixed_delta_seconds
        return s

    def apply_settings(self, s):
        self.applied.append((s.synchronous_mode, s.fixed_delta_seconds))
        self.settings = s

    def get_blueprint_library(self):
        return Library()

    def get_map(self):
        return Map()

    def try_spawn_actor(self, bp, tf):
        self.ego = Ego(bp, y=-self.offset, speed=10.0)
        return self.ego

    def spawn_actor(self, bp, tf, attach_to=None):
        assert attach_to is self.ego and isinstance(tf, carla.Transform)
        self.sensors.append(Sensor(bp))
        return self.sensors[-1]

    @property
    def actors(self):
        return [self.ego, *self.sensors]

    def tick(self, timeout=None):
        self.frame += 1
        if self.fail_at is not None and self.frame >= self.fail_at:
            raise RuntimeError("time-out while waiting for the simulator")
        if self.frame > 1:
            self.ego.step(carla_loop.DELTA_S)
        # The lane centre in the vehicle frame (REP-103: y left): y / cos(yaw) at the origin,
        # at angle yaw (CARLA's yaw turns right, so the road turns left relative to the car).
        e = self.ego
        mask = synthetic_mask(self.cam, offset=e.y / math.cos(e.yaw), heading=e.yaw)
        bgra = np.zeros((self.cam.height, self.cam.width, 4), np.uint8)
        bgra[..., 2] = np.where(mask > 0, ROADLINE, 7)  # the tag in the red channel
        images = {"semantic": bgra.tobytes(), "rgb": np.zeros_like(bgra).tobytes()}
        for sensor in self.sensors:
            kind = "semantic" if "semantic" in sensor.bp.id else "rgb"
            sensor.callback(types.SimpleNamespace(frame=self.frame, raw_data=images[kind]))
        return self.frame


@pytest.fixture
def fake_server(monkeypatch):
    """Only the client and the world are stand-ins; carla's value types are the real wheel's."""

    def install(world):
        client = types.SimpleNamespace(get_world=lambda: world)
        monkeypatch.setattr(carla_loop, "connect", lambda *a: (client, "0.9.16"))
        return world

    return install


SERVER = Servers("h", (1,), 1.0)


def test_fake_server_drive_steers_back_to_the_centre_and_cleans_up(fake_server, tmp_path):
    world = fake_server(World(offset=0.5))  # 0.5 m left of the lane centre
    ctrl = ControllerConfig(cruise_speed_mps=10.0)
    report = carla_loop.run_carla(
        SERVER, DriveConfig(seconds=4.0), GroundTruthPerception(), ctrl, tmp_path
    )
    ego = world.ego
    assert len(ego.controls) == 40  # 4 s at 10 Hz, one control per tick
    assert ego.controls[1].steer > 0  # CARLA: + steer turns right, towards the centre
    assert ego.x > 30.0  # the car drove
    m = report["worlds"][0]
    assert m["max_abs_lateral_error_m"] == pytest.approx(0.5, abs=0.05)  # never further out
    assert abs(ego.y) < 0.15 and m["final_abs_lateral_error_m"] < 0.15  # back at the centre
    assert m["estimate_abs_error_m"] < 0.1 and m["completed"]
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
        carla_loop.run_carla(
            SERVER, DriveConfig(seconds=1.0), perception, ControllerConfig(), tmp_path
        )
    assert world.settings.synchronous_mode is False
    assert world.actors and all(a.destroyed for a in world.actors)


def test_vehicle_control_mapping():
    left = carla_loop.to_vehicle_control(carla, math.radians(7.0), 1.5, 70.0)
    assert left.steer == pytest.approx(-0.1) and left.throttle == pytest.approx(0.5)
    brake = carla_loop.to_vehicle_control(carla, 0.0, -3.0, 70.0)
    assert brake.brake == pytest.approx(0.5) and brake.throttle == 0.0
    assert carla_loop.to_vehicle_control(carla, -2.0, 0.0, 70.0).steer == 1.0  # clipped
