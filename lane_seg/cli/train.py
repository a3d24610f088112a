"""`lane-seg train`: train a model from a YAML config, in one process or, as one rank of each,
in several under torchrun (`torchrun --nproc_per_node N -m lane_seg.cli train ...`)."""

from __future__ import annotations

import argparse
import dataclasses

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        "Train a segmentation model (checkpoints last.pt/best.pt, CSV log, curves PNG). "
        "For several processes: torchrun --nproc_per_node N -m lane_seg.cli train ...",
        "lane-seg train --config training/configs/unet.yaml --out runs/unet",
    )
    p.add_argument("--config", required=True, help="training YAML (see training/configs/)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--out", help="override train.out (the run directory)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override train.device")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--stop-after",
        type=int,
        default=0,
        metavar="N",
        help="pause after N epochs of this invocation (continue later with --resume)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.train.config import load_config
    from lane_seg.training.train.trainer import run_training

    if args.epochs is not None and args.epochs < 1:
        raise LaneSegError(f"--epochs must be at least 1, got {args.epochs}")
    if args.stop_after < 0:
        raise LaneSegError(f"--stop-after must be 0 (off) or more, got {args.stop_after}")
    cfg = load_config(args.config)
    overrides = {"out": args.out, "epochs": args.epochs, "device": args.device}
    cfg.train = dataclasses.replace(
        cfg.train, **{k: v for k, v in overrides.items() if v is not None}
    )
    run_training(cfg, args.resume, not args.no_progress, args.stop_after)
    return 0
