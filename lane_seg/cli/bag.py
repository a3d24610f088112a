"""`lane-seg bag IN OUT --topic T --model M`: segment every frame of a rosbag2 into a new bag."""

from __future__ import annotations

import argparse

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError
from lane_seg.runtime.shipped_model import model_or_default


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "bag",
        "Replay a rosbag2 (mcap or sqlite3) offline: segment every frame of an image topic, "
        "write masks, lane lines (and overlays) with the original stamps into a new bag, "
        "copying all other topics through.",
        "lane-seg bag drive_bag runs/drive_masks --topic /camera/image_raw "
        "--model models/unet_int8.onnx --overlay",
    )
    p.add_argument("input", metavar="IN", help="rosbag2 folder (metadata.yaml + .mcap/.db3)")
    p.add_argument("output", metavar="OUT", help="new rosbag2 folder (must not exist)")
    p.add_argument("--topic", required=True, help="image topic (Image or CompressedImage)")
    p.add_argument("--model", help="lane_seg model (.onnx or .pt); default: the shipped int8 model")
    p.add_argument("--engine", default="auto", help="auto, onnxruntime, openvino, torch, ...")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.add_argument("--threshold", type=float, default=None, help="default: the model's")
    p.add_argument("--mask-topic", default="/seg_node/mask", help="default /seg_node/mask")
    p.add_argument("--overlay", action="store_true", help="also write bgr8 overlays")
    p.add_argument("--overlay-topic", default="/seg_node/overlay", help="default /seg_node/overlay")
    p.add_argument(
        "--lanes-topic",
        default="/seg_node/lanes",
        help="lane lines, a nav_msgs/Path each (default /seg_node/lanes; markers on "
        "<topic>/markers); camera from the bag's camera_info beside --topic",
    )
    p.add_argument("--no-lanes", action="store_true", help="do not write the lane lines")
    p.add_argument(
        "--params-file",
        help="the node's parameter file (e.g. config/seg.yaml): its camera.* mounting (and "
        "intrinsics, when camera.fx > 0) place the lane lines",
    )
    p.add_argument(
        "--storage", choices=("mcap", "sqlite3"), help="output storage (default: the input's)"
    )
    p.add_argument("--max-lines", type=int, default=10, help="bad frames to list (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lane_seg.ros.bag import camera_params, check_paths, replay
    from lane_seg.runtime.segmenter import Segmenter

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise LaneSegError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    check_paths(Path(args.input), Path(args.output), args.storage, args.topic)
    mount, camera = camera_params(args.params_file) if args.params_file else ({}, None)

    args.model = model_or_default(args.model)
    seg = Segmenter.load(args.model, args.engine, args.threads, args.threshold)
    print(f"model {args.model} on {seg.engine.describe()}")
    report = replay(
        seg,
        args.input,
        args.output,
        args.topic,
        storage=args.storage,
        mask_topic=args.mask_topic,
        overlay_topic=args.overlay_topic if args.overlay else None,
        lanes_topic=None if args.no_lanes else args.lanes_topic,
        mount=mount,
        camera=camera,
    )
    print(report.summary())
    for line in report.bad[: args.max_lines]:
        print(f"  bad frame {line}")
    if len(report.bad) > args.max_lines:
        print(f"  ... and {len(report.bad) - args.max_lines} more")
    return 1 if report.bad else 0
