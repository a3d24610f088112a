"""The segmentation node with lane geometry: `~/lane_center` (nav_msgs/Path) from every mask.

`LaneSegNode` is `SegNode` with its lane-centre hook filled by `lane_seg.lane_geometry`:
the camera model comes from `~/camera_info` (sensor_msgs/CameraInfo, intrinsics K) plus fixed
mounting parameters (`camera.height_m`, `camera.pitch_deg`, ...), or entirely from parameters
when `camera.fx` > 0. Until a camera model is known the node publishes masks and empty paths.

    ros2 run lane_seg seg_node --ros-args -p model:=m.onnx -p camera.height_m:=1.45 \
        -p camera.pitch_deg:=2.5 -r ~/image:=/camera/image_raw -r ~/camera_info:=/camera/camera_info
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import CameraInfo

from lane_seg.camera import Camera
from lane_seg.lane_geometry import GeometryConfig, LaneTracker, camera_from_camera_info
from lane_seg.ros.seg_node import SegNode

MOUNT = {
    "height_m": (1.5, "camera height above the ground, metres"),
    "pitch_deg": (2.0, "camera pitch, degrees, + looking down"),
    "yaw_deg": (0.0, "camera yaw, degrees, + to the left"),
    "roll_deg": (0.0, "camera roll, degrees"),
    "x_m": (0.0, "camera position ahead of the vehicle frame's origin, metres"),
    "y_m": (0.0, "camera position left of the vehicle frame's origin, metres"),
}
INTRINSICS = ("fx", "fy", "cx", "cy", "width", "height")


class LaneCenterHook:
    """The `lane_center_fn` of SegNode: mask -> centre-line points, once a camera is known."""

    def __init__(self, cfg: GeometryConfig | None = None) -> None:
        self.cfg = cfg or GeometryConfig()
        self.tracker: LaneTracker | None = None
        self._lock = threading.Lock()

    def set_camera(self, camera: Camera) -> None:
        with self._lock:
            if self.tracker is None or self.tracker.camera != camera:
                self.tracker = LaneTracker(camera, self.cfg)

    def __call__(self, mask: np.ndarray) -> list[tuple[float, float]] | None:
        with self._lock:
            tracker = self.tracker
        return tracker(mask) if tracker is not None else None


class LaneSegNode(SegNode):
    def __init__(self, **kwargs: Any) -> None:
        self.hook = LaneCenterHook()
        super().__init__(lane_center_fn=self.hook, **kwargs)
        for name, (default, text) in MOUNT.items():
            self.declare_parameter(
                f"camera.{name}", default, ParameterDescriptor(description=text, read_only=True)
            )
        for name in INTRINSICS:
            self.declare_parameter(
                f"camera.{name}",
                0.0 if name not in ("width", "height") else 0,
                ParameterDescriptor(
                    description=f"intrinsic {name}; 0 = take it from ~/camera_info", read_only=True
                ),
            )
        self.mount = {k: float(self.get_parameter(f"camera.{k}").value) for k in MOUNT}
        intr = {k: self.get_parameter(f"camera.{k}").value for k in INTRINSICS}
        if float(intr["fx"]) > 0:
            self.hook.set_camera(
                Camera(
                    int(intr["width"]),
                    int(intr["height"]),
                    float(intr["fx"]),
                    float(intr["fy"]),
                    float(intr["cx"]),
                    float(intr["cy"]),
                    **self.mount,
                )
            )
        self.info_sub = self.create_subscription(CameraInfo, "~/camera_info", self._on_info, 5)

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            cam = camera_from_camera_info(list(msg.k), msg.width, msg.height, **self.mount)
        except ValueError as exc:
            self._count_bad(f"camera_info: {exc}")
            return
        self.hook.set_camera(cam)
