"""`lane-seg finetune`: a model fine-tuned on a few labelled frames of your camera, mixed with
simulator frames, exported as an fp32 + int8 ONNX pair."""

from __future__ import annotations

import argparse
import sys

from lane_seg.cli.common import add_command
from lane_seg.outputs import lock_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "finetune",
        "Fine-tune a checkpoint on your labelled frames (a dataset `lane-seg import` wrote, "
        "e.g. --format labelme or cvat) mixed with simulator frames; writes the training run "
        "and OUT/finetuned_fp32.onnx, OUT/finetuned_int8.onnx. Re-run to resume.",
        "lane-seg finetune --labels data/mycam --sim data/roads --out runs/mycam_ft",
    )
    p.add_argument(
        "--model",
        help="checkpoint (.pt) to start from (default: the shipped model, its trainable "
        "weights recovered from its int8 file into OUT/start.pt)",
    )
    p.add_argument("--labels", required=True, help="the labelled frames: an imported dataset")
    p.add_argument("--out", required=True, help="run folder (resumed if it holds last.pt)")
    p.add_argument(
        "--frames", type=int, default=0, help="use N of the labelled train frames (0: all)"
    )
    p.add_argument("--sim", help="simulator dataset mixed in (e.g. data/roads from collect)")
    p.add_argument(
        "--label-share",
        type=float,
        default=0.5,
        help="with --sim: share of the training draws from the labelled frames (default 0.5)",
    )
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--batch-size", type=int, default=8, help="frames per step (default 8)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run and of --frames")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.train.finetune import FinetuneSettings, finetune

    settings = FinetuneSettings(
        frames=args.frames,
        sim=args.sim or "",
        label_share=args.label_share,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
    )
    settings.check()
    lock_folder(args.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    from lane_seg.cli.shipped_start import starting_model

    with starting_model(args.model, args.out) as model:  # the shipped one, recovered
        result = finetune(model, args.labels, args.out, settings, progress=sys.stderr.isatty())
    int8 = result.exported.int8
    print(
        f"{args.out}: {result.steps} steps from {model} in {result.seconds:.0f} s; "
        f"wrote {result.exported.fp32} and {int8}"
    )
    print(f"run it: ros2 launch lane_seg seg.launch.py model:={int8}")
    return 0
