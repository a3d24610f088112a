"""The CARLA options of `lane-seg collect --backend carla` and `lane-seg sim --backend carla`,
declared once (`--host`, `--port`, `--timeout` mean the same in both), and the configs
(`lane_seg.sim.carla.options`) they become. Kept light (argparse only) so that building the
`lane-seg` parser never imports numpy, OpenCV or the CARLA client."""

from __future__ import annotations

import argparse

from lane_seg.errors import LaneSegError
from lane_seg.sim.carla.options import (
    DEFAULT_TOWNS,
    DEFAULT_WEATHERS,
    CarlaConfig,
    CollectJob,
    Servers,
)
from lane_seg.sizes import parse_size


def add_server_arguments(g: argparse._ArgumentGroup, several: bool) -> None:
    """--host, --port (`several`: a list PORT,PORT,... to fill one dataset from several servers
    in parallel) and --timeout."""
    g.add_argument("--host", default="127.0.0.1", help="CARLA server host (default 127.0.0.1)")
    more = (
        ", or several (2000,2002,...) to fill one dataset from several servers in parallel"
        if several
        else ""
    )
    g.add_argument("--port", default="2000", help=f"server RPC port{more} (default 2000)")
    g.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the server (default 10)"
    )


def parse_ports(text: str) -> tuple[int, ...]:
    """ "2000" or "2000,2002,...": distinct ports 1..65535."""
    ports = []
    for part in _names(str(text)):
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise LaneSegError(f"--port must be PORT or PORT,PORT,... (1..65535); got {text!r}")
        ports.append(int(part))
    if not ports or len(set(ports)) != len(ports):
        raise LaneSegError(f"--port needs one or more distinct ports; got {text!r}")
    return tuple(ports)


def servers_from_args(args: argparse.Namespace, several: bool) -> Servers:
    ports = parse_ports(args.port)
    if not several and len(ports) > 1:
        raise LaneSegError(f"--port: the closed loop drives on one server; got {args.port!r}")
    if args.timeout <= 0:
        raise LaneSegError("--timeout must be positive")
    return Servers(args.host, ports, args.timeout, getattr(args, "tm_port", 8000))


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--backend carla` options of `lane-seg collect`."""
    g = parser.add_argument_group(
        "CARLA backend (--backend carla; start CarlaUE4.sh first, client pinned to carla==0.9.16, "
        "servers 0.9.13+)"
    )
    add_server_arguments(g, several=True)
    g.add_argument(
        "--tm-port", type=int, default=8000, help="Traffic Manager port of the first server; "
        "server i uses TM_PORT+i (default 8000)"
    )  # fmt: skip
    g.add_argument("--every", type=int, default=10, help="record every K-th tick (default 10)")
    g.add_argument("--warmup", type=int, default=30, help="ticks before recording (default 30)")
    g.add_argument(
        "--frames-per-episode", type=int, default=100, help="frames per episode (default 100)"
    )
    g.add_argument(
        "--delta", type=float, default=0.05, help="fixed time step in seconds (default 0.05)"
    )
    towns = ",".join(DEFAULT_TOWNS)
    g.add_argument("--towns", default=towns, help=f"towns to cycle ({towns})")
    g.add_argument(
        "--weathers",
        default=",".join(DEFAULT_WEATHERS),
        help="carla.WeatherParameters presets to draw from (noon, sunset and night presets "
        "give the times of day)",
    )
    g.add_argument(
        "--image-size", default="1280x720", help="camera WIDTHxHEIGHT (default 1280x720)"
    )
    g.add_argument("--fov", default="80,100", help="horizontal FOV range, degrees (80,100)")
    g.add_argument(
        "--cam-x", default="0.5,1.5", help="camera ahead of the vehicle centre, m (0.5,1.5)"
    )
    g.add_argument("--cam-y", default="-0.2,0.2", help="camera to the right, m (-0.2,0.2)")
    g.add_argument(
        "--cam-z", default="0.05,0.4", help="camera above the vehicle's roof, m (0.05,0.4)"
    )
    g.add_argument("--cam-pitch", default="0,8", help="camera pitch down, degrees (0,8)")
    g.add_argument("--cam-yaw", default="-3,3", help="camera yaw, degrees (-3,3)")
    g.add_argument("--npc", type=int, default=20, help="other vehicles on autopilot (default 20)")
    g.add_argument(
        "--min-speed",
        type=float,
        default=1.0,
        help="skip frames while the ego is slower than this, m/s (default 1; 0 keeps all)",
    )
    g.add_argument("--vehicle", default="vehicle.*", help="ego blueprint filter (4-wheeled only)")
    g.add_argument(
        "--no-crossings",
        action="store_true",
        help="leave stop lines and crosswalks out of the lane mask",
    )
    g.add_argument("--id-prefix", default="carla", help="sample id prefix (default carla)")


def _range(text: str, name: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise LaneSegError(f"--{name} must be a number or MIN,MAX; got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or values[0] > values[1]:
        raise LaneSegError(f"--{name} must be a number or MIN,MAX with MIN <= MAX; got {text!r}")
    return values[0], values[1]


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def config_from_args(args: argparse.Namespace) -> CarlaConfig:
    """What each episode draws from, checked: one line naming the option when it is wrong."""
    width, height = parse_size(args.image_size, "--image-size", minimum=32)
    for name in ("every", "frames_per_episode"):
        if getattr(args, name) < 1:
            raise LaneSegError(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.npc < 0 or not 0.0 < args.delta <= 0.5:
        raise LaneSegError("--warmup and --npc must be >= 0, --delta in (0, 0.5] seconds")
    if args.min_speed < 0:
        raise LaneSegError("--min-speed must be >= 0 m/s")
    towns, weathers = _names(args.towns), _names(args.weathers)
    if not towns or not weathers:
        raise LaneSegError("--towns and --weathers need at least one name each")
    fov = _range(args.fov, "fov")
    if not 10 <= fov[0] <= fov[1] <= 170:
        raise LaneSegError("--fov must lie within 10..170 degrees")
    return CarlaConfig(
        towns=tuple(towns),
        weathers=tuple(weathers),
        width=width,
        height=height,
        fov=fov,
        cam_x=_range(args.cam_x, "cam-x"),
        cam_y=_range(args.cam_y, "cam-y"),
        cam_z=_range(args.cam_z, "cam-z"),
        cam_pitch=_range(args.cam_pitch, "cam-pitch"),
        cam_yaw=_range(args.cam_yaw, "cam-yaw"),
        every=args.every,
        warmup=args.warmup,
        frames_per_episode=args.frames_per_episode,
        delta_seconds=args.delta,
        npc=args.npc,
        min_speed=args.min_speed,
        vehicle=args.vehicle,
        no_crossings=bool(args.no_crossings),
    )


def job_from_args(args: argparse.Namespace) -> CollectJob:
    """The dataset side of `lane-seg collect` (its own options are checked by the command)."""
    return CollectJob(
        out=args.out,
        frames=args.frames,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        id_prefix=args.id_prefix,
    )
