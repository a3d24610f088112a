"""The segmentation node's lane centre: `~/lane_center` (nav_msgs/Path) from every frame's lane
lines (`Segmenter.lanes`, the one lane step), filtered over time by `lane_seg.lanes.tracker`.

The camera model comes from `~/camera_info` (sensor_msgs/CameraInfo, intrinsics K) plus fixed
mounting parameters (`camera.height_m`, `camera.pitch_deg`, ...), or entirely from parameters
when `camera.fx` > 0. Until a camera model is known the node publishes masks and empty paths.

    ros2 run lane_seg seg_node --ros-args -p camera.height_m:=1.45 -p camera.pitch_deg:=2.5 \
        -r ~/image:=/camera/image_raw -r ~/camera_info:=/camera/camera_info
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rclpy.node import Node

from lane_seg.camera import Camera
from lane_seg.lanes.extract import LaneInstance
from lane_seg.lanes.tracker import LaneTracker, TrackerConfig
from lane_seg.ros.params import descriptor

MOUNT = {
    "height_m": (1.5, "camera height above the ground, metres", (0.05, 20.0)),
    "pitch_deg": (2.0, "camera pitch, degrees, + looking down", (-45.0, 80.0)),
    "yaw_deg": (0.0, "camera yaw, degrees, + to the left", (-90.0, 90.0)),
    "roll_deg": (0.0, "camera roll, degrees", (-45.0, 45.0)),
    "x_m": (0.0, "camera position ahead of the vehicle frame's origin, metres", (-20.0, 20.0)),
    "y_m": (0.0, "camera position left of the vehicle frame's origin, metres", (-10.0, 10.0)),
}
INTRINSICS = ("fx", "fy", "cx", "cy", "width", "height")


class LaneCenterHook:
    """The `lane_center_fn` of SegNode: a frame's lane lines -> centre-line points, once a
    camera is known (lines found without one carry no ground fits: nothing to track)."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self.tracker: LaneTracker | None = None
        self.camera: Camera | None = None
        self._lock = threading.Lock()

    def set_camera(self, camera: Camera) -> None:
        """A new camera starts a new track: the lines so far were seen through another."""
        with self._lock:
            if self.tracker is None or self.camera != camera:
                self.tracker, self.camera = LaneTracker(self.cfg), camera

    def __call__(self, lanes: Sequence[LaneInstance]) -> list[tuple[float, float]] | None:
        with self._lock:
            tracker = self.tracker
        return tracker(lanes) if tracker is not None else None


def declare_camera(node: Node) -> tuple[dict[str, float], Camera | None]:
    """Declare the `camera.*` parameters (read-only); returns the mounting, and the whole camera
    when the intrinsics are given as parameters (`camera.fx` > 0)."""
    for name, (default, text, limits) in MOUNT.items():
        node.declare_parameter(
            f"camera.{name}", default, descriptor(text, read_only=True, float_range=limits)
        )
    for name in INTRINSICS:
        integer = name in ("width", "height")
        node.declare_parameter(
            f"camera.{name}",
            0 if integer else 0.0,
            descriptor(
                f"intrinsic {name}; 0 = take it from ~/camera_info",
                read_only=True,
                **({"int_range": (0, 100_000)} if integer else {"float_range": (0.0, 1e6)}),
            ),
        )
    mount = {k: float(node.get_parameter(f"camera.{k}").value) for k in MOUNT}
    intr = {k: node.get_parameter(f"camera.{k}").value for k in INTRINSICS}
    if float(intr["fx"]) <= 0:
        return mount, None
    camera = Camera(
        int(intr["width"]),
        int(intr["height"]),
        float(intr["fx"]),
        float(intr["fy"]),
        float(intr["cx"]),
        float(intr["cy"]),
        **mount,
    )
    return mount, camera
