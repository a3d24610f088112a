"""`lane-seg infer --model M INPUT...`: lane masks for images, folders, videos and rosbag2s."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.outputs import output_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "infer",
        "Segment lane markings in images, folders of images, videos (mp4) and rosbag2 "
        "folders: writes masks and overlays, or an overlay video per input video or bag; with "
        "--lanes also the lane lines.",
        "lane-seg infer --model models/unet_int8.onnx ../shared/data/real/udacity/"
        "solidWhiteRight.mp4 frames/ road.jpg drive_bag --out runs/infer",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders, videos, rosbag2 folders"
    )
    p.add_argument("--topic", help="rosbag2: the image topic (default: its first image topic)")
    p.add_argument(
        "--model",
        default="auto",
        help="lane_seg model (.onnx or .pt); auto (default): the most accurate shipped int8 "
        "model that meets --latency-budget-ms here",
    )
    p.add_argument(
        "--latency-budget-ms",
        type=float,
        default=0.0,
        help="--model auto's budget per frame; 0 (default): the first input video's frame "
        "period, else 33 ms",
    )
    p.add_argument("--out", default="runs/infer", help="output folder (default runs/infer)")
    p.add_argument(
        "--engine", default="auto", help="auto (fastest here), onnxruntime, openvino, torch, ..."
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.add_argument(
        "--threshold", type=float, default=None, help="probability threshold (default: model's)"
    )
    p.add_argument("--no-masks", action="store_true", help="do not write mask PNGs for images")
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay images")
    p.add_argument(
        "--mask-video", action="store_true", help="also write a mask video for each video"
    )
    p.add_argument(
        "--lanes",
        action="store_true",
        help="also the lane lines: CULane .lines.txt and TuSimple json (masks/tusimple.json, "
        "<video>_tusimple.json) beside the masks, drawn on the overlays",
    )
    p.add_argument(
        "--export",
        choices=("labelme", "cvat"),
        help="also pre-labels to correct in a labelling tool (implies --lanes): OUT/labelme/ "
        "(each frame and its .json) or OUT/cvat/ (images/ and annotations.xml); "
        "`lane-seg import --format labelme|cvat` reads them back",
    )
    p.add_argument(
        "--export-every",
        type=int,
        default=30,
        metavar="N",
        help="with --export, every N-th frame of a video becomes a pre-label (default 30)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lane_seg.runtime.infer import InferOptions, collect_inputs, infer_all
    from lane_seg.runtime.model_pick import latency_budget, load_model
    from lane_seg.runtime.segmenter import Segmenter

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise LaneSegError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    if args.export_every < 1:
        raise LaneSegError(f"--export-every must be at least 1, got {args.export_every}")
    jobs = collect_inputs(args.inputs, open_bag(args.topic))  # all checked before the model
    output_dir(args.out)

    budget = latency_budget(args.latency_budget_ms, video_fps(jobs))
    engine, pick = load_model(args.model, args.engine, args.threads, budget)
    if pick is not None:
        print(pick.describe())
        if pick.warning():
            print(f"warning: {pick.warning()}", file=sys.stderr)
    seg = Segmenter(engine, args.threshold)
    print(f"model {engine.path} on {engine.describe()}, threshold {seg.threshold:g}")
    opts = InferOptions(
        masks=not args.no_masks,
        overlays=not args.no_overlays,
        mask_video=args.mask_video,
        lanes=args.lanes or args.export is not None,
        export=args.export,
        export_every=args.export_every,
    )
    report = infer_all(seg, jobs, args.out, opts)
    print(report.summary())
    for line in report.failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 1 if report.failures else 0


def open_bag(topic: str | None) -> Callable[[Path], Any]:
    """How a bag among the inputs is opened: `lane_seg.ros.recorded`, the one opener (its
    `lane_seg.data.frames.Recorded`, not named here: that module loads OpenCV)."""

    def opened(path: Path) -> Any:
        from lane_seg.ros.recorded import recorded_frames  # rosbags, only when a bag is given

        return recorded_frames(path, topic)

    return opened


def video_fps(jobs: list) -> float:
    """The frame rate of the first input video or bag (its camera's, for --model auto's
    budget); 0 when there is none or it does not say."""
    from lane_seg.data.frames import video_info  # OpenCV, only when a video is given

    for job in jobs:
        if job.recording is not None:
            return job.recording.fps
        if job.video:
            return video_info(job.path)[0]
    return 0.0
