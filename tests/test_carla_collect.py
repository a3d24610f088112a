"""The CARLA collector's parts that need no server (the end-to-end test is test_carla_e2e.py)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from lane_seg.camera import Camera
from lane_seg.cli.carla_options import (
    add_collect_arguments,
    config_from_args,
    job_from_args,
    parse_ports,
    servers_from_args,
)
from lane_seg.cli.main import main
from lane_seg.errors import LaneSegError
from lane_seg.sim.carla import client
from lane_seg.sim.carla import collect as cc
from lane_seg.sim.carla.labels import (
    ROADLINE_NEW,
    ROADLINE_OLD,
    bgra_to_mask,
    bgra_to_rgb,
    intrinsics,
    parse_version,
    project_world,
    remove_polygons,
    remove_transverse,
    split_polygons,
    tag_scheme,
)
from lane_seg.sim.carla.sync import ActorPool, FramePairer, synchronous

carla = pytest.importorskip("carla")


# --- versions and tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.9.13", (0, 9, 13)),
        ("0.9.14-1-g4e1c2a3", (0, 9, 14)),
        ("0.9.15.2", (0, 9, 15)),
        ("0.9.16-dirty", (0, 9, 16)),
        ("0.10.0", (0, 10, 0)),
        ("v0.9", (0, 9, 0)),
    ],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "latest", "9-dev", None])
def test_parse_version_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_version(text)


def test_tag_scheme_follows_the_server_version():
    assert tag_scheme("0.9.13").roadline == ROADLINE_OLD == 6
    assert tag_scheme("0.9.13-42-gdeadbee").roadline == 6
    assert tag_scheme("0.9.14").roadline == ROADLINE_NEW == 24
    assert tag_scheme("0.9.16").roadline == 24
    assert tag_scheme("0.10.0").roadline == 24
    assert "tag 24" in tag_scheme("0.9.16").description
    with pytest.raises(LaneSegError, match="older than 0.9.13"):
        tag_scheme("0.9.12")
    with pytest.raises(LaneSegError, match="RoadLine tag"):
        tag_scheme("unknown build")


def bgra_buffer(tags: np.ndarray) -> bytes:
    """What CARLA's semantic camera sends: BGRA bytes, tag in the red channel (index 2)."""
    h, w = tags.shape
    buf = np.zeros((h, w, 4), np.uint8)
    buf[..., 0] = 11  # blue and green carry no tag; make them differ from red
    buf[..., 1] = 7
    buf[..., 2] = tags
    buf[..., 3] = 255
    return buf.tobytes()


def test_tag_to_mask_on_raw_bgra_for_both_schemes():
    tags = np.zeros((4, 6), np.uint8)
    tags[1, 1] = 6  # RoadLine up to 0.9.13, Poles from 0.9.14
    tags[2, 3] = 24  # RoadLine from 0.9.14
    tags[3, 5] = 7  # Road in both
    raw = bgra_buffer(tags)
    old = bgra_to_mask(raw, 6, 4, tag_scheme("0.9.13"))
    new = bgra_to_mask(raw, 6, 4, tag_scheme("0.9.16"))
    assert np.argwhere(old == 255).tolist() == [[1, 1]]
    assert np.argwhere(new == 255).tolist() == [[2, 3]]
    assert set(np.unique(new)) == {0, 255} and new.dtype == np.uint8
    with pytest.raises(ValueError, match="BGRA"):
        bgra_to_mask(raw[:-4], 6, 4, tag_scheme("0.9.16"))


def test_rgb_from_raw_bgra():
    buf = np.zeros((2, 3, 4), np.uint8)
    buf[0, 0] = (10, 20, 30, 255)  # B, G, R, A
    rgb = bgra_to_rgb(buf.tobytes(), 3, 2)
    assert rgb.shape == (2, 3, 3) and rgb[0, 0].tolist() == [30, 20, 10]
    assert rgb.flags["C_CONTIGUOUS"]


# --- frame pairing ---------------------------------------------------------------------------


class Measurement:
    def __init__(self, frame: int, name: str):
        self.frame, self.name = frame, name


def test_frames_are_paired_by_id_not_by_arrival_order():
    pairer = FramePairer(["rgb", "seg"])
    rgb, seg = pairer.callback("rgb"), pairer.callback("seg")
    # seg runs ahead and rgb arrives late and out of order
    for f in (10, 11, 12):
        seg(Measurement(f, f"seg{f}"))
    rgb(Measurement(12, "rgb12"))
    rgb(Measurement(11, "rgb11"))
    got = pairer.wait(11, timeout=1.0)
    assert got["rgb"].name == "rgb11" and got["seg"].name == "seg11"
    assert pairer.dropped == 1  # seg10 was older than the frame asked for
    got = pairer.wait(12, timeout=1.0)
    assert got["rgb"].frame == got["seg"].frame == 12


def test_pairing_waits_for_a_late_sensor_thread():
    pairer = FramePairer(["rgb", "seg"])
    pairer.put("rgb", 5, "rgb5")

    def late() -> None:
        time.sleep(0.1)
        pairer.put("seg", 4, "seg4")  # an older frame first: must not satisfy frame 5
        pairer.put("seg", 5, "seg5")

    threading.Thread(target=late).start()
    assert pairer.wait(5, timeout=2.0) == {"rgb": "rgb5", "seg": "seg5"}


def test_pairing_times_out_naming_the_missing_sensor():
    pairer = FramePairer(["rgb", "seg"])
    pairer.put("rgb", 3, "x")
    pairer.put("seg", 4, "y")  # a different frame does not count
    with pytest.raises(TimeoutError, match="frame 3 from seg"):
        pairer.wait(3, timeout=0.05)


def test_discard_through_drops_unrecorded_ticks():
    pairer = FramePairer(["rgb"])
    for f in range(5):
        pairer.put("rgb", f, f)
    pairer.discard_through(3)
    assert pairer.wait(4, timeout=0.1) == {"rgb": 4}
    assert pairer.dropped == 4


# --- synchronous mode and actors -------------------------------------------------------------


class World:
    """Records settings the way a server does: get_settings returns a fresh copy each time."""

    def __init__(self, fail_restore: bool = False):
        self._current = carla.WorldSettings(synchronous_mode=False, fixed_delta_seconds=0.0)
        self.applied: list[tuple[bool, float]] = []
        self.fail_restore = fail_restore

    def get_settings(self):
        s = self._current
        return carla.WorldSettings(
            synchronous_mode=s.synchronous_mode,
            no_rendering_mode=s.no_rendering_mode,
            fixed_delta_seconds=s.fixed_delta_seconds or 0.0,
        )

    def apply_settings(self, settings):
        if self.fail_restore and not settings.synchronous_mode:
            raise RuntimeError("time-out of 1000ms while waiting for the simulator")
        self._current = settings
        self.applied.append((settings.synchronous_mode, settings.fixed_delta_seconds))


class TrafficManager:
    def __init__(self):
        self.sync: list[bool] = []

    def set_synchronous_mode(self, on: bool) -> None:
        self.sync.append(on)


def _restored(world: World, tm: TrafficManager) -> bool:
    s = world.get_settings()
    return (not s.synchronous_mode) and not s.fixed_delta_seconds and tm.sync[-1] is False


def test_synchronous_mode_is_set_inside_and_restored_after():
    world, tm = World(), TrafficManager()
    with synchronous(world, tm, 0.05):
        s = world.get_settings()
        assert s.synchronous_mode and s.fixed_delta_seconds == pytest.approx(0.05)
        assert tm.sync == [True]
    assert _restored(world, tm)


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_synchronous_mode_is_restored_on_errors_and_ctrl_c(error):
    world, tm = World(), TrafficManager()
    with pytest.raises(type(error)), synchronous(world, tm, 0.05):
        raise error
    assert _restored(world, tm)
    assert world.applied[-1] == (False, 0.0) or not world.applied[-1][1]


def test_a_dead_server_at_restore_keeps_the_original_error():
    world, tm = World(fail_restore=True), TrafficManager()
    with pytest.raises(ValueError, match="original"), synchronous(world, tm, 0.05):
        raise ValueError("original")


class Actor:
    def __init__(self, log: list, name: str, sensor: bool = False, fail: bool = False):
        self.log, self.id, self.fail = log, name, fail
        if sensor:
            self.listen = lambda cb: None
            self.stop = lambda: log.append(f"stop {name}")

    def destroy(self):
        if self.fail:
            raise RuntimeError("time-out")
        self.log.append(f"destroy {self.id}")


class SpawnWorld:
    def __init__(self, log):
        self.log = log

    def spawn_actor(self, bp, transform, attach_to=None):
        return Actor(self.log, bp, sensor=bp.startswith("sensor"))

    def try_spawn_actor(self, bp, transform):
        return None if bp == "blocked" else Actor(self.log, bp)


def test_every_spawned_actor_is_destroyed_sensors_first_even_on_error():
    log: list[str] = []
    world = SpawnWorld(log)
    with pytest.raises(KeyboardInterrupt), ActorPool() as pool:
        ego = pool.try_spawn(world, "vehicle.ego", None)
        assert pool.try_spawn(world, "blocked", None) is None
        pool.spawn(world, "sensor.rgb", None, attach_to=ego)
        pool.spawn(world, "sensor.seg", None, attach_to=ego)
        raise KeyboardInterrupt
    assert log == [
        "stop sensor.seg",
        "destroy sensor.seg",
        "stop sensor.rgb",
        "destroy sensor.rgb",
        "destroy vehicle.ego",
    ]
    assert pool.actors == []


def test_a_dead_server_does_not_wait_out_a_timeout_per_actor():
    log: list[str] = []
    pool = ActorPool()
    pool.actors = [Actor(log, "a"), Actor(log, "b", fail=True), Actor(log, "c")]
    assert pool.destroy_all() == 2  # c destroyed, b failed: a not tried
    assert log == ["destroy c"] and pool.actors == []


# --- no server -------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: nobody listens there


def test_no_server_gives_a_clear_error_within_the_timeout():
    port = closed_port()
    start = time.monotonic()
    with pytest.raises(LaneSegError) as err:
        client.connect("127.0.0.1", port, timeout=1.0)
    assert str(err.value) == (
        f"no CARLA server at 127.0.0.1:{port} after 1 s; start CarlaUE4.sh, or use --backend planar"
    )
    assert time.monotonic() - start < 6.0


def test_collect_cli_with_a_dead_server_exits_2_and_writes_nothing(tmp_path, capsys):
    port = closed_port()
    out = tmp_path / "carla"
    argv = ["collect", "--backend", "carla", "--port", str(port), "--timeout", "1"]
    code = main([*argv, "--out", str(out), "--frames", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"no CARLA server at 127.0.0.1:{port} after 1 s" in err
    assert not out.exists()


# --- planning and options --------------------------------------------------------------------


def carla_args(**over) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_collect_arguments(p)
    args = p.parse_args([])
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_episodes_are_a_pure_function_of_seed_and_index():
    cfg = config_from_args(carla_args(towns="Town01,Town03"))
    a = [cc.plan_episode(7, i, 2, cfg, 0.1, 0.1) for i in range(40)]
    b = [cc.plan_episode(7, i, 2, cfg, 0.1, 0.1) for i in range(40)]
    assert a == b
    assert [e.town for e in a[:4]] == ["Town01", "Town03", "Town01", "Town03"]
    assert [e.slot for e in a[:3]] == [0, 1, 0]
    assert all(cfg.fov[0] <= e.fov <= cfg.fov[1] for e in a)
    assert all(cfg.cam_pitch[0] <= e.cam_pitch <= cfg.cam_pitch[1] for e in a)
    assert len({e.weather for e in a}) > 3 and len({e.seed for e in a}) == 40
    splits = [cc.episode_split(7, i, 0.2, 0.1) for i in range(2000)]
    assert 0.15 < splits.count("val") / 2000 < 0.25 and 0.06 < splits.count("test") / 2000 < 0.14
    ids = {cc.sample_id("carla", e, k) for e in a for k in range(3)}
    assert len(ids) == 120 and all("/" not in i for i in ids)


def test_towns_resolve_to_the_servers_map_names():
    maps = [
        "/Game/Carla/Maps/Town01",
        "/Game/Carla/Maps/Town01_Opt",
        "/Game/Carla/Maps/Town10HD_Opt",
    ]
    assert client.resolve_town("Town01", maps) == "Town01"
    assert client.resolve_town("Town10HD", maps) == "Town10HD_Opt"
    with pytest.raises(LaneSegError, match="'Town07' is not on this CARLA server"):
        client.resolve_town("Town07", maps)


def test_record_ticks_after_warmup_every_k():
    recorded = [t for t in range(1, 40) if cc.is_record_tick(t, warmup=10, every=5)]
    assert recorded == [15, 20, 25, 30, 35]


def test_a_server_dying_mid_run_keeps_the_data_and_says_how_to_resume(tmp_path, monkeypatch):
    from lane_seg.data.dataset import DatasetWriter, load_dataset, verify_dataset

    cfg = config_from_args(carla_args())
    writer = DatasetWriter(tmp_path / "d", "test", {"backend": "carla"})
    shared = cc.Shared(writer, "carla")
    episodes = [(cc.plan_episode(0, i, 1, cfg, 0.1, 0.0), [0, 1]) for i in range(3)]
    calls = []

    def episode(client, tm, ep, todo, *rest):
        calls.append(ep.index)
        if ep.index == 1:
            raise RuntimeError("time-out of 10000ms while waiting for the simulator")
        image, mask = np.zeros((4, 6, 3), np.uint8), np.zeros((4, 6), np.uint8)
        for k in todo:
            shared.add(cc.sample_id("carla", ep, k), ep.split, image, mask, {})

    class Client:
        def get_trafficmanager(self, port):
            return None

    monkeypatch.setattr(cc, "run_episode", episode)
    errors: list[BaseException] = []
    scheme = tag_scheme("0.9.16")
    cc.serve_slot("127.0.0.1", 2000, 8000, Client(), scheme, episodes, cfg, 1.0, shared, errors)
    writer.close()
    assert calls == [0, 1] and shared.stop.is_set()  # stopped at the dead server
    assert isinstance(errors[0], cc.ServerLost)
    assert str(errors[0]) == (
        "CARLA server at 127.0.0.1:2000 stopped answering in episode 1 (time-out of 10000ms "
        "while waiting for the simulator); the 2 samples written are valid: restart the server "
        "and re-run the same command to resume"
    )
    assert len(load_dataset(tmp_path / "d")) == 2 and verify_dataset(tmp_path / "d").ok


def test_several_servers_fill_one_dataset_and_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    """The scheduling around the servers (no CARLA here: run_episode is replaced)."""
    from lane_seg.data.dataset import load_dataset, verify_dataset

    class Client:
        def get_trafficmanager(self, port):
            return port

    served: list[tuple[int, int, int]] = []

    def episode(client, tm, ep, todo, cfg, scheme, timeout, shared):
        served.append((tm, ep.index, len(todo)))
        rgb = np.full((4, 6, 3), ep.index, np.uint8)
        for k in todo:
            shared.add(cc.sample_id(shared.prefix, ep, k), ep.split, rgb, rgb[..., 0], {})

    monkeypatch.setattr(cc, "connect", lambda host, port, timeout: (Client(), "0.9.16"))
    monkeypatch.setattr(cc, "run_episode", episode)
    args = carla_args(port="2000,2002", frames_per_episode=3)
    for k, v in dict(out=str(tmp_path / "d"), frames=10, seed=1, val_fraction=0.2,
                     test_fraction=0.0).items():  # fmt: skip
        setattr(args, k, v)
    cfg, at = config_from_args(args), servers_from_args(args, several=True)
    assert at.ports == (2000, 2002)
    job = job_from_args(args)
    assert cc.collect_carla(job, cfg, at, progress=False) == 10
    assert "RoadLine is semantic tag 24" in capsys.readouterr().err
    ds = load_dataset(tmp_path / "d")
    assert len(ds) == 10 and verify_dataset(tmp_path / "d").ok
    # Episodes 0 and 2 on the first server (TM 8000), 1 and 3 on the second (TM 8001).
    assert sorted(served) == [(8000, 0, 3), (8000, 2, 3), (8001, 1, 3), (8001, 3, 1)]
    assert {s.id.split("-")[1] for s in ds} == {"s0", "s1"}
    served.clear()
    assert cc.collect_carla(job, cfg, at, progress=False) == 0 and served == []
    job = dataclasses.replace(job, frames=12)
    assert cc.collect_carla(job, cfg, at, progress=False) == 2
    assert sorted(served) == [(8001, 3, 2)]


def test_sigterm_stops_cleanly_and_keeps_what_was_written(tmp_path, monkeypatch):
    """SIGTERM takes the Ctrl-C path: workers finish their tick and clean up, data stays valid."""
    import signal

    from lane_seg.data.dataset import load_dataset, verify_dataset

    cleaned = threading.Event()

    def episode(client, tm, ep, todo, cfg, scheme, timeout, shared):
        try:
            for k in todo:
                if shared.stop.is_set():
                    return
                rgb = np.zeros((4, 6, 3), np.uint8)
                shared.add(cc.sample_id(shared.prefix, ep, k), ep.split, rgb, rgb[..., 0], {})
                if k == 3:  # a job scheduler stops us mid-episode
                    # Aimed at the main thread, where Python runs signal handlers: a
                    # process-wide kill may land on a native thread of a library an earlier
                    # test loaded (OpenVINO's pool segfaulted on it).
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
                time.sleep(0.02)
        finally:
            cleaned.set()  # where the real episode restores settings and destroys actors

    monkeypatch.setattr(cc, "run_episode", episode)
    args = carla_args(frames_per_episode=1000)
    for k, v in dict(out=str(tmp_path / "d"), frames=1000, seed=0, val_fraction=0.0,
                     test_fraction=0.0).items():  # fmt: skip
        setattr(args, k, v)

    class Client:
        def get_trafficmanager(self, port):
            return None

    monkeypatch.setattr(cc, "connect", lambda host, port, timeout: (Client(), "0.9.13"))
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        cc.collect_carla(job_from_args(args), config_from_args(args), servers_from_args(args, True))
    assert cleaned.is_set()
    assert signal.getsignal(signal.SIGTERM) == before
    n = len(load_dataset(tmp_path / "d"))
    assert 0 < n < 1000 and verify_dataset(tmp_path / "d").ok


def test_episode_frames_cover_the_total():
    assert [cc.episode_frames(250, 100, i) for i in range(4)] == [100, 100, 50, 0]


def test_bad_options_are_clear():
    with pytest.raises(LaneSegError, match="--port"):
        parse_ports("2000,abc")
    with pytest.raises(LaneSegError, match="distinct"):
        parse_ports("2000,2000")
    assert parse_ports("2000, 2002") == (2000, 2002)
    with pytest.raises(LaneSegError, match="one server"):
        servers_from_args(carla_args(port="2000,2002"), several=False)
    with pytest.raises(LaneSegError, match="--fov"):
        config_from_args(carla_args(fov="100,80"))
    with pytest.raises(LaneSegError, match="--image-size"):
        config_from_args(carla_args(image_size="wide"))
    with pytest.raises(LaneSegError, match="--every"):
        config_from_args(carla_args(every=0))
    with pytest.raises(LaneSegError, match="--min-speed"):
        config_from_args(carla_args(min_speed=-1.0))
    with pytest.raises(LaneSegError, match="unknown weather preset"):
        client.check_weathers(("ClearNoon", "Sunny"))
    client.check_weathers(config_from_args(carla_args()).weathers)  # the defaults all exist


# --- geometry: intrinsics, projection, crossings ---------------------------------------------


def test_camera_model_intrinsics_and_mount():
    cfg = config_from_args(carla_args(image_size="800x600"))
    ep = cc.plan_episode(0, 0, 1, cfg, 0.1, 0.0)
    cam = cc.camera_model(ep, cfg, 1.6)
    assert cam.fx == pytest.approx(400 / math.tan(math.radians(ep.fov) / 2))
    assert (cam.cx, cam.cy) == (400.0, 300.0)
    assert cam.pitch_deg == ep.cam_pitch and cam.yaw_deg == -ep.cam_yaw
    assert cam.y_m == -ep.cam_y and cam.height_m == 1.6


def _carla_cam(height=1.5, pitch_down=5.0):
    """A CARLA camera at the world origin looking along +x, and our Camera for it."""
    pose = carla.Transform(carla.Location(z=height), carla.Rotation(pitch=-pitch_down))
    fx, fy, cx, cy = intrinsics(640, 360, 90.0)
    cam = Camera(640, 360, fx, fy, cx, cy, height_m=height, pitch_deg=pitch_down)
    return np.array(pose.get_inverse_matrix()), cam


def test_world_projection_matches_the_camera_model():
    world_to_sensor, cam = _carla_cam()
    ground = np.array([[10.0, 0.0, 0.0], [20.0, -2.0, 0.0], [8.0, 3.0, 0.0]])  # CARLA y right
    uv, depth = project_world(ground, world_to_sensor, cam)
    ours, _ = cam.project(ground * np.array([1.0, -1.0, 1.0]))  # our y points left
    assert np.allclose(uv, ours, atol=1e-3) and (depth > 0).all()


def test_crosswalk_polygons_are_cut_out_of_the_mask():
    world_to_sensor, cam = _carla_cam()
    mask = np.full((360, 640), 255, np.uint8)
    square = [(10, -2, 0), (10, 2, 0), (14, 2, 0), (14, -2, 0), (10, -2, 0)]
    polys = split_polygons([*square, *[(x + 20, y, z) for x, y, z in square]])
    assert len(polys) == 2 and all(len(p) == 4 for p in polys)
    out = remove_polygons(mask, polys, world_to_sensor, cam)
    uv, _ = project_world(np.array([[12.0, 0.0, 0.0]]), world_to_sensor, cam)
    u, v = np.round(uv[0]).astype(int)
    assert mask[v, u] == 255 and out[v, u] == 0
    assert out[5, 5] == 255 and (out == 0).sum() > 100


def test_transverse_markings_are_removed_lane_lines_kept():
    cam = Camera.from_fov(640, 360, 90.0, height_m=1.5, pitch_deg=5.0)
    mask = np.zeros((360, 640), np.uint8)

    def paint(x0, x1, y0, y1):  # a ground rectangle in the vehicle frame (y left)
        corners = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], float)
        uv, _ = cam.project(corners)
        cv2.fillPoly(mask, [np.round(uv).astype(np.int32)], 255)

    paint(5, 30, 1.6, 1.75)  # a lane line on the left, 15 cm wide, running forward
    lane = mask > 0
    paint(12, 12.4, -1.7, 1.3)  # a stop line across the ego lane, 40 cm deep
    out = remove_transverse(mask, cam)
    stop_row = int(cam.project(np.array([[12.2, 0.0, 0.0]]))[0][0, 1])
    assert mask[stop_row, 320] == 255 and lane.sum() > 300  # both painted
    assert out[stop_row, 320] == 0 and (out[~lane] == 0).all()  # the stop line is gone
    assert (out[lane] == 255).all()  # the lane line stays
