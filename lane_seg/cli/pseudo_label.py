"""`lane-seg pseudo-label`: unlabelled real frames labelled by a model's own lane lines."""

from __future__ import annotations

import argparse

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "pseudo-label",
        "Self-training data: run a lines model on unlabelled frames (images, videos, rosbag2 "
        "folders) and keep those where it finds both ego lines with confidence, its fitted "
        "lines as the mask; re-run to resume.",
        "lane-seg pseudo-label --model runs/roads_full/best.pt --frames "
        "'../shared/data/real/udacity/**/*.jpg' --frames '../shared/data/real/udacity/*.mp4' "
        "--out data/pseudo_real",
    )
    p.add_argument("--model", required=True, help=".onnx or .pt model predicting lane lines")
    p.add_argument(
        "--frames",
        action="append",
        required=True,
        help="glob of images, videos or rosbag2 folders (repeatable; ** recurses); use "
        "licences that allow what the trained model will be used for",
    )
    p.add_argument("--topic", help="rosbag2: the image topic (default: its first image topic)")
    p.add_argument("--out", required=True, help="output dataset folder (resumed if it exists)")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="both ego lines at least this confident, else the frame is left out (default 0.5)",
    )
    p.add_argument(
        "--video-stride", type=int, default=1, help="every n-th video or bag frame (default 1)"
    )
    p.add_argument("--engine", default="auto", help="inference engine (default auto)")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.ros.recorded import glob_frames  # the one opener, with bags
    from lane_seg.training.pseudo_labels import PseudoConfig, pseudo_label

    if not 0 <= args.min_confidence <= 1 or args.video_stride < 1:
        raise LaneSegError("--min-confidence must be in 0..1 and --video-stride at least 1")
    cfg = PseudoConfig(min_confidence=args.min_confidence, video_stride=args.video_stride)
    out = output_dir(args.out)
    r = pseudo_label(
        args.model,
        args.frames,
        out,
        cfg,
        args.engine,
        args.threads,
        frames_of=lambda patterns, every: glob_frames(patterns, every, args.topic),
    )
    print(
        f"{out}: {r.kept} frames labelled now, {r.already} already there, {r.left_out} of "
        f"{r.frames} left out (the model was not sure of both ego lines)"
    )
    return 0
