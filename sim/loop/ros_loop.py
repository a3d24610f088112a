"""Closed loop over ROS 2: simulator -> segmentation node -> controller node -> simulator.

- `SimBridge` renders the simulator's camera and publishes `sensor_msgs/Image` (rgb8) and
  `sensor_msgs/CameraInfo` on /camera/..., stamped with simulation time; it applies the
  `geometry_msgs/TwistStamped` commands on /cmd_vel to the vehicle model (kinematic bicycle:
  steering angle = atan(yaw rate * wheelbase / speed)). It runs in lockstep, like CARLA's
  synchronous mode: frame i+1 is rendered once the command stamped with frame i's time has
  arrived (or a time-out passed, which is counted), so a slow machine slows the drive down
  instead of changing it.
- `SegNode` (lane_seg.ros.seg_node) is the real segmentation node: it segments the frames and
  publishes `~/lane_center` (nav_msgs/Path, vehicle frame) from the lane lines, tracked.
- `LaneControllerNode` (lane_seg.ros.lane_controller) turns each lane-centre path into a command
  with the same `LaneController` the in-process loop uses, stamped with the path's stamp.
The nodes are wired by remapping their private topics, as the launch file does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from lane_seg.camera import Camera
from lane_seg.lanes.control import ControllerConfig
from lane_seg.lanes.geometry import poly
from lane_seg.lanes.tracker import LaneEstimate
from lane_seg.ros.image_codec import mask_array
from lane_seg.ros.lane_controller import LaneControllerNode
from lane_seg.ros.messages import camera_info_msg, header, image_msg, path_to_estimate, stamp_ns
from lane_seg.ros.params import qos_override
from lane_seg.ros.seg_node import NODE_NAME, SegNode
from lane_seg.sim.loop.metrics import DriveEnd, FrameLog, world_metrics
from lane_seg.sim.loop.scenarios import Scenario
from lane_seg.sim.world.drive import Command, DriveFrame, build_world, drive, nominal_camera
from lane_seg.sim.world.scene import Scene
from lane_seg.sim.world.vehicle import VehicleParams

IMAGE_TOPIC = "/camera/image_raw"
INFO_TOPIC = "/camera/camera_info"
CMD_TOPIC = "/cmd_vel"
LANE_TOPIC = f"/{NODE_NAME}/lane_center"
MASK_TOPIC = f"/{NODE_NAME}/mask"
STAMP_OFFSET_S = 1000.0  # simulation time of frame 0 (a zero stamp reads as "unset")
RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)


# What a recorder gets per frame: the rendered frame, the seg node's mask (None if it never
# came), the lane estimate from the node's path, and the frame's log entry.
Recorder = Callable[[DriveFrame, "np.ndarray | None", "LaneEstimate | None", FrameLog], None]


class SimBridge(Node):
    """The simulator on ROS 2: publishes the camera, applies /cmd_vel, in lockstep.

    With `record`, it also subscribes to the seg node's mask and hands every frame to it."""

    def __init__(
        self,
        cam: Camera,
        fps: float,
        accel_gain: float,
        timeout_s: float = 5.0,
        record: Recorder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__("lane_sim", **kwargs)
        self.cam, self.dt, self.accel_gain, self.timeout_s = cam, 1.0 / fps, accel_gain, timeout_s
        self.image_pub = self.create_publisher(Image, IMAGE_TOPIC, RELIABLE)
        self.info_pub = self.create_publisher(CameraInfo, INFO_TOPIC, RELIABLE)
        self.create_subscription(TwistStamped, CMD_TOPIC, self._on_cmd, RELIABLE)
        self.create_subscription(Path, LANE_TOPIC, self._on_path, RELIABLE)
        self.record = record
        self._masks: dict[int, Image] = {}
        if record is not None:
            self.create_subscription(Image, MASK_TOPIC, self._on_mask, RELIABLE)
        self._cond = threading.Condition()
        self._cmds: dict[int, TwistStamped] = {}
        self._paths: dict[int, tuple[float, Path]] = {}
        self.last_cmd = TwistStamped()
        self.timeouts = 0
        self.log: list[FrameLog] = []

    def _on_cmd(self, msg: TwistStamped) -> None:
        with self._cond:
            self._cmds[stamp_ns(msg.header)] = msg
            self._cond.notify_all()

    def _on_path(self, msg: Path) -> None:
        with self._cond:
            self._paths[stamp_ns(msg.header)] = (time.monotonic(), msg)

    def _on_mask(self, msg: Image) -> None:
        with self._cond:
            self._masks[stamp_ns(msg.header)] = msg
            self._cond.notify_all()

    def _take_mask(self, key: int) -> np.ndarray | None:
        """The node's mask for this frame; it is published before the path, so it is normally
        here by the time the command is."""
        with self._cond:
            self._cond.wait_for(lambda: key in self._masks, 0.5)
            msg = self._masks.pop(key, None)
        return mask_array(msg).copy() if msg is not None else None

    def steering(self, frame: DriveFrame, scene: Scene, params: VehicleParams) -> Command:
        """`drive()` steering callable: publish the frame, wait for its command, apply it."""
        hdr = header(STAMP_OFFSET_S + frame.time_s, "camera_optical")
        key = stamp_ns(hdr)
        img = image_msg(frame.image, "rgb8", hdr)
        self.info_pub.publish(camera_info_msg(self.cam, hdr))
        sent = time.monotonic()
        self.image_pub.publish(img)
        with self._cond:
            got = self._cond.wait_for(lambda: key in self._cmds, self.timeout_s)
            cmd = self._cmds.pop(key) if got else self.last_cmd
            path = self._paths.pop(key, None)
        if not got:
            self.timeouts += 1
        self.last_cmd = cmd
        v_cmd, yaw_rate = cmd.twist.linear.x, cmd.twist.angular.z
        steer = math.atan(yaw_rate * params.wheelbase_m / v_cmd) if v_cmd > 0.1 else 0.0
        est = path_to_estimate(path[1]) if path is not None else None
        latency = (path[0] - sent) * 1e3 if path is not None else math.nan
        st = frame.state
        entry = FrameLog(
            t=frame.time_s,
            s=frame.s_m,
            distance=frame.distance_m,
            x=st.x,
            y=st.y,
            yaw=st.yaw,
            speed=st.speed,
            steer_cmd=steer,
            steer_applied=st.steer,
            lateral_error=frame.lateral_error_m,
            est_offset=-float(poly(est.center, self.cam.x_m)) if est else math.nan,
            confidence=1.0 if est else 0.0,
            lines_found=2 if est else 0,
            perception_ms=latency,
            geometry_ms=0.0,
            mask_iou=math.nan,
        )
        self.log.append(entry)
        if self.record is not None:
            self.record(frame, self._take_mask(key), est, entry)
        return Command(steer, self.accel_gain * (v_cmd - st.speed))


def run_ros_loop(
    scenario: Scenario,
    seed: int,
    model: str | FsPath,
    ctrl: ControllerConfig,
    engine: str = "onnxruntime-cpu",
    threads: int = 0,
    timeout_s: float = 5.0,
    record: Recorder | None = None,
) -> dict[str, Any]:
    """Drive one world of a scenario through the three ROS 2 nodes; returns the metrics."""
    cfg = scenario.sim_config()
    scene = build_world(seed, cfg, length_m=scenario.distance_m + 60.0)
    cam = nominal_camera(cfg)
    ctrl = ctrl.with_speed(scenario.speed_mps)
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes: list[Node] = []
    executor = None
    spin = None
    try:
        mount = {f"camera.{k}": float(getattr(cam, k)) for k in
                 ("height_m", "pitch_deg", "yaw_deg", "roll_deg", "x_m", "y_m")}  # fmt: skip
        overrides = [
            Parameter("model", value=str(model)),
            Parameter("engine", value=engine),
            Parameter("threads", value=int(threads)),
            Parameter(qos_override(IMAGE_TOPIC), value="reliable"),  # lockstep: lose nothing
            *[Parameter(k, value=v) for k, v in mount.items()],
        ]
        remap = ["-r", f"~/image:={IMAGE_TOPIC}", "-r", f"~/camera_info:={INFO_TOPIC}"]
        seg = SegNode(
            context=context, parameter_overrides=overrides, cli_args=["--ros-args", *remap]
        )
        nodes.append(seg)
        settings = [Parameter(k, value=v) for k, v in dataclasses.asdict(ctrl).items()]
        remap = ["-r", f"~/lane_center:={LANE_TOPIC}", "-r", f"~/cmd_vel:={CMD_TOPIC}"]
        nodes.append(
            LaneControllerNode(
                context=context, parameter_overrides=settings, cli_args=["--ros-args", *remap]
            )
        )
        bridge = SimBridge(cam, scenario.fps, ctrl.accel_gain, timeout_s, record, context=context)
        nodes.append(bridge)
        executor = SingleThreadedExecutor(context=context)
        for n in nodes:
            executor.add_node(n)
        spin = threading.Thread(target=lambda: _spin(executor), daemon=True)
        spin.start()
        _wait(lambda: bridge.image_pub.get_subscription_count() > 0, 10.0, "the seg node")
        _wait(lambda: bridge.count_publishers(CMD_TOPIC) > 0, 10.0, "the controller node")
        _wait(lambda: seg.lane_center_pub.get_subscription_count() >= 2, 10.0, "lane subscribers")
        end_reason = "distance"
        ending = DriveEnd(scene.lane_width, scenario.fps)
        for frame in drive(
            scene, cam, None, scenario.fps, scenario.speed_mps, seed,
            steering=bridge.steering, distance_m=scenario.distance_m,
            start_offset_m=scenario.start_offset_m,
        ):  # fmt: skip
            reason = ending.reason(frame)
            if reason is not None:
                end_reason = reason
                break
        return world_metrics(
            bridge.log,
            scene,
            scenario.fps,
            seed,
            scenario.distance_m,
            end_reason,
            command_timeouts=bridge.timeouts,
            seg_node=seg.stats.snapshot(),
            transport="ros2",
        )
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        for n in reversed(nodes):
            n.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
        if spin is not None:
            spin.join(timeout=5.0)


def _spin(executor: SingleThreadedExecutor) -> None:
    with contextlib.suppress(Exception):  # shutdown races end the spin; the finally cleans up
        executor.spin()


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
