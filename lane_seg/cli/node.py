"""`lane-seg node`: start the ROS 2 segmentation node where only the pip wheels exist.

The same node as `ros2 run lane_seg seg_node`; the options are turned into `--ros-args`, and
anything after `--` is passed on to ROS unchanged.
"""

from __future__ import annotations

import argparse

from lane_seg.cli.common import add_command
from lane_seg.errors import LaneSegError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "node",
        "Run the ROS 2 lane segmentation node (~/image -> ~/mask, ~/overlay, /diagnostics).",
        "lane-seg node --image-topic /camera/image_raw -- -p threshold:=0.5",
    )
    p.add_argument(
        "--model",
        default="",
        help="lane_seg model (.onnx or .pt); default auto: the most accurate shipped "
        "int8 model that meets the node's latency_budget_ms here",
    )
    p.add_argument("--engine", default="auto", help="auto, onnxruntime, openvino, torch, ...")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = default)")
    p.add_argument("--image-topic", help="camera topic to remap ~/image (or ~/image/compressed) to")
    p.add_argument(
        "--transport", choices=("raw", "compressed"), default="raw", help="input transport"
    )
    p.add_argument("--params-file", help="ROS 2 parameter YAML (e.g. config/seg.yaml)")
    p.add_argument("--namespace", help="namespace for the node, e.g. /front")
    p.add_argument("--name", default="seg_node", help="node name (default seg_node)")
    p.add_argument("ros_args", nargs=argparse.REMAINDER, help="-- then extra --ros-args")
    p.set_defaults(func=run)


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The argv that rclpy.init gets: parameters, remappings, then the user's extra ROS args."""
    ros = ["--ros-args"]
    if args.params_file:
        ros += ["--params-file", args.params_file]
    # -p after --params-file: command-line values win over the file
    if args.model:  # else the node's own default, auto
        ros += ["-p", f"model:={args.model}"]
    ros += ["-p", f"engine:={args.engine}"]
    ros += ["-p", f"threads:={args.threads}", "-p", f"input_transport:={args.transport}"]
    if args.image_topic:
        suffix = "/compressed" if args.transport == "compressed" else ""
        ros += ["-r", f"~/image{suffix}:={args.image_topic}"]
    if args.namespace:
        ros += ["-r", f"__ns:={args.namespace}"]
    if args.name:
        ros += ["-r", f"__node:={args.name}"]
    extra = list(args.ros_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    if extra and extra[0] != "--ros-args":
        extra = ["--ros-args", *extra]
    return ["lane-seg-node", *ros, *extra]


def run(args: argparse.Namespace) -> int:
    try:
        from lane_seg.ros.entry_points import seg_node
    except ImportError as exc:
        raise LaneSegError(
            f"the node needs ROS 2 Python packages ({exc}); pip install 'lane_seg[ros]' or "
            "source a ROS 2 install"
        ) from exc
    return seg_node(ros_arguments(args))
