"""`lane-seg adapt`: the model adapted to one camera from its unlabelled frames (a video, a folder
of images or a rosbag2), written as an fp32 + int8 ONNX pair with a card section."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import lock_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "adapt",
        "Adapt a model to your camera from its own unlabelled frames (no labels): BatchNorm "
        "statistics re-estimated on them (AdaBN) and int8 calibration on them; writes "
        "OUT/adapted_fp32.onnx, OUT/adapted_int8.onnx and the card OUT/ADAPT.md. Re-run to "
        "resume.",
        "lane-seg adapt --frames drive.mp4 --every 5 --out runs/mycam",
    )
    p.add_argument(
        "--model",
        help="checkpoint (.pt) to start from (default: the shipped model, its trainable "
        "weights recovered from its int8 file into OUT/start.pt)",
    )
    p.add_argument(
        "--frames",
        required=True,
        help="the camera's frames: a video, a folder of images (searched recursively) or a "
        "rosbag2 folder",
    )
    p.add_argument("--topic", help="rosbag2: the image topic (default: its first image topic)")
    p.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    p.add_argument(
        "--methods",
        default="adabn,calibration",
        help="comma-separated: adabn (BatchNorm statistics), selftrain (a short fine-tune on "
        "the model's own sure lines, with --sim), distill (a short fine-tune toward its own "
        "mirror-averaged probabilities on the frames, mixed with --sim), calibration (int8 "
        "ranges from the frames); default adabn,calibration",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="AdaBN: share of the camera's statistics mixed with the model's (default 0.5)",
    )
    p.add_argument("--every", type=int, default=1, metavar="N", help="use every N-th frame")
    p.add_argument("--min-frames", type=int, default=50, help="refuse fewer frames (default 50)")
    p.add_argument("--max-frames", type=int, default=500, help="use at most this many (500)")
    p.add_argument(
        "--calib", help="without the calibration method: dataset whose train split calibrates"
    )
    p.add_argument("--calib-size", type=int, default=64, help="calibration frames (default 64)")
    p.add_argument("--sim", help="selftrain, distill: simulator dataset mixed in (e.g. data/roads)")
    p.add_argument(
        "--selftrain-steps", type=int, default=200, help="selftrain: steps (default 200)"
    )
    p.add_argument("--distill-steps", type=int, default=50, help="distill: steps (default 50)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    p.set_defaults(func=run)


def frame_source(src: str, topic: str | None, every: int) -> Iterator[tuple[str, str, Any]]:
    """(key, clip, RGB) of every `every`-th frame of a video, a folder of images (one clip per
    sub-folder) or a rosbag2 folder (`lane_seg.ros.recorded`, the one dispatch)."""
    from lane_seg.ros.recorded import recorded_frames  # OpenCV and rosbags, only when run

    try:
        recorded = recorded_frames(src, topic, every)
    except LaneSegError as exc:
        raise LaneSegError(f"--frames {exc}") from None
    return ((f.key, f.clip, f.rgb) for f in recorded.frames)


def run(args: argparse.Namespace) -> int:
    from lane_seg.training.adapt.run import AdaptConfig, adapt

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if args.every < 1:
        raise LaneSegError(f"--every must be at least 1, got {args.every}")
    cfg = AdaptConfig(
        methods=methods,
        alpha=args.alpha,
        min_frames=args.min_frames,
        max_frames=args.max_frames,
        calib_size=args.calib_size,
        calib_dataset=args.calib or "",
        sim=args.sim or "",
        selftrain_steps=args.selftrain_steps,
        distill_steps=args.distill_steps,
        threads=args.threads,
    )
    cfg.check()
    frames = frame_source(args.frames, args.topic, args.every)
    lock_folder(args.out)  # checked, and this command's alone until it returns (lane_seg.outputs)
    from lane_seg.cli.shipped_start import starting_model

    with starting_model(args.model, args.out) as model:  # the shipped one, recovered
        report = adapt(model, frames, args.frames, args.out, cfg, progress=sys.stderr.isatty())
    out = Path(args.out)
    figs = report.figures
    last = figs.get("adapted int8", {})
    print(
        f"{out}: adapted {model} to {report.frames} frames of {args.frames} in "
        f"{report.seconds:.0f} s; both ego lines in {figs['source fp32']['both_ego']:.0%} of the "
        f"frames before, {last.get('both_ego', 0.0):.0%} after (int8); card {out / 'ADAPT.md'}"
    )
    print(f"run it: ros2 launch lane_seg seg.launch.py model:={out / 'adapted_int8.onnx'}")
    return 0
