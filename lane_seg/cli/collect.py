"""`lane-seg collect`: write a labelled dataset from a data source (built-in simulator, CARLA)."""

from __future__ import annotations

import argparse
import os
import time

from lane_seg.cli.carla_options import (
    add_collect_arguments,
    config_from_args,
    job_from_args,
    servers_from_args,
)
from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "collect",
        "Render labelled frames (RGB + lane mask) into a dataset directory; re-run to resume.",
        "lane-seg collect --backend planar --out data/sim --frames 1000 --seed 0 --preview\n"
        "  lane-seg collect --backend carla --host 127.0.0.1 --port 2000 --out data/carla "
        "--frames 2000 --every 10",
    )
    p.add_argument(
        "--backend",
        choices=["planar", "carla"],
        default="planar",
        help="planar: the built-in road simulator (default); carla: a running CARLA server",
    )
    p.add_argument("--out", required=True, help="dataset directory (created or resumed)")
    p.add_argument("--frames", type=int, required=True, help="total frames the dataset should hold")
    p.add_argument("--seed", type=int, default=0, help="base seed; frame i depends on (seed, i)")
    p.add_argument(
        "--config", help="YAML overriding any simulator range (defaults: config/sim.yaml)"
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of frames in val")
    p.add_argument("--test-fraction", type=float, default=0.0, help="share of frames in test")
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="render processes (default: up to 2)",
    )
    p.add_argument("--preview", action="store_true", help="also write DIR/preview.png")
    add_collect_arguments(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.frames <= 0:
        raise LaneSegError(f"--frames must be positive, got {args.frames}")
    if not (0.0 <= args.val_fraction < 1.0 and 0.0 <= args.test_fraction < 1.0):
        raise LaneSegError("--val-fraction and --test-fraction must lie in [0, 1)")
    if args.val_fraction + args.test_fraction >= 1.0:
        raise LaneSegError("--val-fraction + --test-fraction must leave frames for training")
    if args.workers < 1:
        raise LaneSegError(f"--workers must be at least 1, got {args.workers}")


def run(args: argparse.Namespace) -> int:
    from lane_seg.sim.world.collect import collect_planar, write_preview
    from lane_seg.sim.world.scene import SimConfig

    _check(args)
    if args.backend == "carla":
        from lane_seg.sim.carla.collect import run as run_carla

        carla_cfg, at = config_from_args(args), servers_from_args(args, several=True)
        output_dir(args.out)
        code = run_carla(job_from_args(args), carla_cfg, at)
        if args.preview:
            print(f"preview: {write_preview(args.out)}")
        return code
    cfg = SimConfig.from_yaml(args.config)
    output_dir(args.out)
    start = time.perf_counter()
    written = collect_planar(
        args.out,
        args.frames,
        args.seed,
        cfg,
        args.val_fraction,
        args.test_fraction,
        args.workers,
        progress=True,
    )
    elapsed = time.perf_counter() - start
    rate = f", {written / elapsed:.1f} frames/s" if written else ""
    print(
        f"{args.out}: wrote {written} frames in {elapsed:.1f} s{rate} "
        f"({args.frames - written} already there)"
    )
    if args.preview:
        print(f"preview: {write_preview(args.out)}")
    return 0
