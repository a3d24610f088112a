"""`lane-seg train`: train a model from a YAML config (single process; torchrun for DDP)."""

from __future__ import annotations

import argparse

from lane_seg.cli.common import add_command
from lane_seg.training.train.args import add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        "Train a segmentation model (checkpoints last.pt/best.pt, CSV log, curves PNG). "
        "For several processes: torchrun --nproc_per_node N -m lane_seg.training.train ...",
        "lane-seg train --config training/configs/unet.yaml --out runs/unet",
    )

    add_train_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.train.trainer import run_from_args

    return run_from_args(args)
