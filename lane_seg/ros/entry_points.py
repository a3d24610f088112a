"""The package's node executables: `ros2 run lane_seg seg_node` and `... lane_controller`
(console scripts from setup.py; `lane-seg node` runs the first)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from lane_seg.errors import LaneSegError
from lane_seg.ros.lane_controller import NODE_NAME as CONTROLLER
from lane_seg.ros.lane_controller import LaneControllerNode
from lane_seg.ros.seg_node import NODE_NAME as SEGMENTATION
from lane_seg.ros.seg_node import SegNode


@contextmanager
def _stderr_kept_if_ok() -> Iterator[None]:
    """Hold back what C code writes to stderr in the block; pass it on only if no exception.
    For single-threaded start-up code only: stderr is the process's file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.buffer.write(held.read())  # reached only without an exception
        sys.stderr.flush()


def run_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Init, spin until Ctrl-C or shutdown; start-up problems (bad --ros-args, LaneSegError)
    become one line on stderr and exit code 2."""
    try:
        with _stderr_kept_if_ok():  # rcl also logs its own "Failed to parse" line
            rclpy.init(args=args)
    except Exception as exc:  # rclpy's RCLError for malformed --ros-args
        reason = str(exc).splitlines()[0].split(", at /")[0]
        print(f"{name}: error: bad ROS arguments: {reason}", file=sys.stderr)
        return 2
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except LaneSegError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def seg_node(args: list[str] | None = None) -> int:
    """`seg_node`: camera frames in, lane masks and the lane centre out."""
    return run_node(SegNode, SEGMENTATION, args)


def lane_controller(args: list[str] | None = None) -> int:
    """`lane_controller`: lane centre in, speed and yaw rate out."""
    return run_node(LaneControllerNode, CONTROLLER, args)
