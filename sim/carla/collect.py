"""`lane-seg collect --backend carla`: labelled frames from a running CARLA server.

The user starts `CarlaUE4.sh` (one or more, on GPU machines); this module does the rest:

- connects with a timeout and says clearly when no server answers;
- per episode: loads a town, sets a weather preset, spawns an ego vehicle on Traffic Manager
  autopilot (plus optional traffic) and an RGB and a semantic camera with one transform and
  one set of intrinsics, all in synchronous mode at a fixed time step;
- records every `--every`-th tick after a warm-up, pairing the two cameras by frame id;
- labels lane markings from the semantic tags, with the RoadLine tag chosen from the server's
  version (carla_labels.tag_scheme), optionally without stop lines and crosswalks;
- restores the server's settings and destroys what it spawned on every exit path, and keeps
  every sample written so far valid when the server dies: re-running the command resumes.

Episodes are planned from (seed, episode index) alone, so a resumed or parallel run agrees on
what each episode is; episode e goes to server slot e mod n, and sample ids carry the slot.
Episodes are clips: a whole episode lands in one split.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lane_seg.camera import Camera
from lane_seg.data.dataset import DatasetWriter, encode_image, encode_mask, load_dataset
from lane_seg.errors import LaneSegError
from lane_seg.sim.carla.client import check_weathers, connect, load_town, vehicle_blueprints
from lane_seg.sim.carla.labels import (
    TagScheme,
    bgra_to_mask,
    bgra_to_rgb,
    intrinsics,
    remove_polygons,
    remove_transverse,
    split_polygons,
    tag_scheme,
)
from lane_seg.sim.carla.options import CarlaConfig, CollectJob, Servers
from lane_seg.sim.carla.spawn import attach_cameras, spawn_ego
from lane_seg.sim.carla.sync import ActorPool, synchronous

log = logging.getLogger(__name__)

SOURCE = "carla"
STALL_FACTOR = 20  # an episode gives up after this many times the ticks it should need


# --- episodes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """One drive: a town, a weather, a spawn draw and a camera placement."""

    index: int
    slot: int
    town: str
    weather: str
    seed: int
    split: str
    fov: float
    cam_x: float
    cam_y: float
    cam_z: float
    cam_pitch: float
    cam_yaw: float


def episode_split(seed: int, index: int, val_fraction: float, test_fraction: float) -> str:
    """Split of a whole episode (a clip), from a hash: stable whatever else changes."""
    digest = hashlib.sha256(f"carla-split:{seed}:{index}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < val_fraction:
        return "val"
    return "test" if u < val_fraction + test_fraction else "train"


def plan_episode(
    seed: int, index: int, slots: int, cfg: CarlaConfig, val_fraction: float, test_fraction: float
) -> Episode:
    """Episode `index` as a pure function of its inputs: towns cycle, the rest is drawn."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0xCA21A]))

    def draw(lo_hi: tuple[float, float]) -> float:
        return round(float(rng.uniform(*lo_hi)), 4)

    return Episode(
        index=index,
        slot=index % slots,
        town=cfg.towns[index % len(cfg.towns)],
        weather=cfg.weathers[int(rng.integers(len(cfg.weathers)))],
        seed=int(rng.integers(2**31 - 1)),
        split=episode_split(seed, index, val_fraction, test_fraction),
        fov=draw(cfg.fov),
        cam_x=draw(cfg.cam_x),
        cam_y=draw(cfg.cam_y),
        cam_z=draw(cfg.cam_z),
        cam_pitch=draw(cfg.cam_pitch),
        cam_yaw=draw(cfg.cam_yaw),
    )


def is_record_tick(tick: int, warmup: int, every: int) -> bool:
    """Tick numbers start at 1; after `warmup` ticks, every `every`-th one is recorded."""
    return tick > warmup and (tick - warmup) % every == 0


def sample_id(prefix: str, episode: Episode, k: int) -> str:
    return f"{prefix}-s{episode.slot}-e{episode.index:05d}-{k:04d}"


def episode_frames(total: int, per_episode: int, index: int) -> int:
    """How many frames episode `index` holds when `total` are wanted."""
    return max(0, min(per_episode, total - index * per_episode))


# --- talking to the server -------------------------------------------------------------------


class ServerLost(LaneSegError):
    """The server stopped answering in the middle of a run."""


def camera_model(ep: Episode, cfg: CarlaConfig, height_above_road: float) -> Camera:
    """Our Camera (REP-103 vehicle frame: y left, yaw left) for a CARLA camera mount."""
    fx, fy, cx, cy = intrinsics(cfg.width, cfg.height, ep.fov)
    return Camera(
        cfg.width,
        cfg.height,
        fx,
        fy,
        cx,
        cy,
        height_m=round(height_above_road, 4),
        pitch_deg=ep.cam_pitch,
        yaw_deg=-ep.cam_yaw,
        x_m=ep.cam_x,
        y_m=-ep.cam_y,
    )


@dataclass
class Shared:
    """What the server threads share: the writer (behind a lock), progress, the stop flag."""

    writer: DatasetWriter
    prefix: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    written: int = 0
    bar: Any = None

    def add(self, sid: str, split: str, image: np.ndarray, mask: np.ndarray, meta: dict) -> None:
        image_bytes, mask_bytes = encode_image(image), encode_mask(mask)  # outside the lock
        with self.lock:
            self.writer.add(sid, split, SOURCE, image_bytes, mask_bytes, **meta)
            self.written += 1
            if self.bar is not None:
                self.bar.update(1)


def run_episode(
    client: Any,
    tm: Any,
    ep: Episode,
    todo: list[int],
    cfg: CarlaConfig,
    scheme: TagScheme,
    timeout: float,
    shared: Shared,
) -> None:
    """Drive one episode and write the frames `todo` (indices k within the episode)."""
    import carla

    world = load_town(client, ep.town, timeout)
    world.set_weather(getattr(carla.WeatherParameters, ep.weather))
    library = world.get_blueprint_library()
    carla_map = world.get_map()
    rng = random.Random(ep.seed)
    crosswalks: list[np.ndarray] = []
    if cfg.no_crossings:
        crosswalks = split_polygons([(p.x, p.y, p.z) for p in carla_map.get_crosswalks()])
    with synchronous(world, tm, cfg.delta_seconds), ActorPool() as pool:
        tm.set_random_device_seed(ep.seed)
        vehicles = vehicle_blueprints(library, cfg.vehicle)
        ego, spawn_points = spawn_ego(world, pool, rng, vehicles, where=ep.town)
        ego.set_autopilot(True, tm.get_port())
        for _ in range(cfg.npc):
            if not spawn_points:
                break
            bp = rng.choice(vehicles)
            if bp.has_attribute("role_name"):
                bp.set_attribute("role_name", "autopilot")
            npc = pool.try_spawn(world, bp, spawn_points.pop())
            if npc is not None:
                npc.set_autopilot(True, tm.get_port())
        # Above the roof of whichever vehicle was drawn, never inside its cabin.
        box = ego.bounding_box
        mount_z = box.location.z + box.extent.z + ep.cam_z
        mount = carla.Transform(
            carla.Location(x=ep.cam_x, y=ep.cam_y, z=mount_z),
            carla.Rotation(pitch=-ep.cam_pitch, yaw=ep.cam_yaw),
        )
        pairer = attach_cameras(world, pool, ego, mount, cfg.width, cfg.height, ep.fov)
        ticks = 0
        todo = list(todo)
        max_ticks = cfg.warmup + cfg.every * len(todo) * STALL_FACTOR
        while todo and not shared.stop.is_set():
            if ticks >= max_ticks:
                log.warning(
                    "episode %d (%s): the ego vehicle barely moved; %d frames left for a re-run",
                    ep.index, ep.town, len(todo),
                )  # fmt: skip
                break
            frame = world.tick(timeout)
            ticks += 1
            if not is_record_tick(ticks, cfg.warmup, cfg.every):
                pairer.discard_through(frame)
                continue
            data = pairer.wait(frame, timeout)
            velocity = ego.get_velocity()
            speed = math.hypot(velocity.x, velocity.y)
            if speed < cfg.min_speed:
                continue  # waiting at a light: the same picture again would teach nothing
            k = todo.pop(0)
            image = bgra_to_rgb(data["rgb"].raw_data, cfg.width, cfg.height)
            mask = bgra_to_mask(data["seg"].raw_data, cfg.width, cfg.height, scheme)
            pose = data["rgb"].transform  # the camera's world pose at this very frame
            road = carla_map.get_waypoint(pose.location, project_to_road=True)
            height = pose.location.z - road.transform.location.z if road else mount_z
            camera = camera_model(ep, cfg, height)
            mount_meta = {"x": ep.cam_x, "y": ep.cam_y, "z": round(mount_z, 4), "fov": ep.fov}
            if cfg.no_crossings:
                world_to_sensor = np.array(pose.get_inverse_matrix())
                mask = remove_polygons(mask, crosswalks, world_to_sensor, camera)
                mask = remove_transverse(mask, camera)
            meta = {
                "camera": camera.to_dict(),
                "camera_mount": mount_meta,  # relative to the vehicle, CARLA axes
                "camera_pose": {
                    "x": pose.location.x,
                    "y": pose.location.y,
                    "z": pose.location.z,
                    "roll": pose.rotation.roll,
                    "pitch": pose.rotation.pitch,
                    "yaw": pose.rotation.yaw,
                    "frame": "carla_world",
                },
                "scene": {
                    "town": ep.town,
                    "weather": ep.weather,
                    "episode": ep.index,
                    "frame": int(frame),
                    "sim_time_s": round(float(data["rgb"].timestamp), 4),
                    "ego_speed_mps": round(speed, 3),
                    "server_version": scheme.server_version,
                    "roadline_tag": scheme.roadline,
                    "no_crossings": cfg.no_crossings,
                },
                "clip": f"episode-{ep.index:05d}",
                "seed": [ep.seed, k],
            }
            shared.add(sample_id(shared.prefix, ep, k), ep.split, image, mask, meta)


def serve_slot(
    host: str,
    port: int,
    tm_port: int,
    client: Any,
    scheme: TagScheme,
    episodes: list[tuple[Episode, list[int]]],
    cfg: CarlaConfig,
    timeout: float,
    shared: Shared,
    errors: list[BaseException],
) -> None:
    """One server's share of the episodes; stops (keeping what it wrote) if the server dies."""
    try:
        tm = client.get_trafficmanager(tm_port)
        for ep, todo in episodes:
            if shared.stop.is_set():
                return
            try:
                run_episode(client, tm, ep, todo, cfg, scheme, timeout, shared)
            except (RuntimeError, TimeoutError) as exc:
                raise ServerLost(
                    f"CARLA server at {host}:{port} stopped answering in episode {ep.index} "
                    f"({exc}); the {shared.written} samples written are valid: restart the "
                    "server and re-run the same command to resume"
                ) from None
    except BaseException as exc:  # noqa: BLE001 (handed to the main thread)
        errors.append(exc)
        shared.stop.set()


def collect_carla(job: CollectJob, cfg: CarlaConfig, at: Servers, progress: bool = True) -> int:
    """Collect until `job.out` holds `job.frames` CARLA frames drawn as `cfg` says, from the
    servers `at`; returns how many were added."""
    ports = at.ports
    check_weathers(cfg.weathers)
    servers = []
    for port in ports:  # all of them answer, or nothing starts
        client, version = connect(at.host, port, at.timeout)
        scheme = tag_scheme(version)
        print(f"{at.host}:{port}: {scheme.description}", file=sys.stderr)
        servers.append((port, client, scheme))
    params = {
        "backend": SOURCE,
        "seed": job.seed,
        "config": cfg.params(),
        "val_fraction": job.val_fraction,
        "test_fraction": job.test_fraction,
        "servers": len(ports),
        "id_prefix": job.id_prefix,
    }
    writer = DatasetWriter(
        job.out, created_by=f"lane-seg collect --backend {SOURCE}", params=params
    )
    shared = Shared(writer, job.id_prefix)
    plans: list[list[tuple[Episode, list[int]]]] = [[] for _ in ports]
    n_episodes = math.ceil(job.frames / cfg.frames_per_episode)
    todo_total = 0
    for index in range(n_episodes):
        ep = plan_episode(job.seed, index, len(ports), cfg, job.val_fraction, job.test_fraction)
        frames = episode_frames(job.frames, cfg.frames_per_episode, index)
        todo = [k for k in range(frames) if sample_id(job.id_prefix, ep, k) not in writer]
        if todo:
            plans[ep.slot].append((ep, todo))
            todo_total += len(todo)
    errors: list[BaseException] = []
    done = [threading.Event() for _ in servers]

    def worker(slot: int, *work: Any) -> None:
        try:
            serve_slot(*work)
        finally:
            done[slot].set()

    threads = [
        threading.Thread(
            target=worker,
            args=(
                slot,
                at.host,
                port,
                at.tm_port + slot,
                client,
                scheme,
                plans[slot],
                cfg,
                at.timeout,
                shared,
                errors,
            ),
            name=f"carla-{port}",
            daemon=True,
        )
        for slot, (port, client, scheme) in enumerate(servers)
    ]
    if progress and todo_total:
        from tqdm import tqdm

        shared.bar = tqdm(total=todo_total, unit="frame", desc="collect carla")
    previous = _sigterm_as_interrupt()
    # Waiting on events, not Thread.join: a join interrupted by Ctrl-C can return early later
    # (CPython gh-90882), and the clean-up below must really wait for the servers' threads.
    try:
        for t in threads:
            t.start()
        while not all(d.is_set() for d in done):
            next(d for d in done if not d.is_set()).wait(0.2)
    except KeyboardInterrupt:
        shared.stop.set()  # each thread finishes its tick, restores settings, destroys actors
        deadline = time.monotonic() + at.timeout * 3
        for d in done:
            d.wait(max(0.0, deadline - time.monotonic()))
        raise
    finally:
        _restore_sigterm(previous)
        if shared.bar is not None:
            shared.bar.close()
        writer.close()
    if errors:
        raise errors[0]
    return shared.written


def _sigterm_as_interrupt() -> Any:
    """SIGTERM (a job scheduler stopping us) takes the same clean path as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def run(job: CollectJob, cfg: CarlaConfig, at: Servers) -> int:
    """`collect_carla` with a progress bar on a terminal, and what it did in a line."""
    start = time.perf_counter()
    written = collect_carla(job, cfg, at, progress=sys.stderr.isatty())
    elapsed = time.perf_counter() - start
    rate = f", {written / elapsed:.2f} frames/s" if written else ""
    have = len(load_dataset(job.out))
    print(f"{job.out}: wrote {written} CARLA frames in {elapsed:.1f} s{rate}; holds {have}")
    if have < job.frames:
        print(
            f"{job.out}: {job.frames - have} frames short (the ego stood still too long in "
            "some episode); re-run the same command to fill them",
            file=sys.stderr,
        )
    return 0
