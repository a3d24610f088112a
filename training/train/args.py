"""Command-line options of training, shared by `lane-seg train` and `python -m
lane_seg.training.train` (kept free of torch imports so `lane-seg --help` stays fast)."""

from __future__ import annotations

import argparse


def add_train_arguments(p: argparse.ArgumentParser) -> None:
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
