"""The lane controller node: lane centre (nav_msgs/Path) in, speed and yaw rate
(geometry_msgs/TwistStamped) out, through the same `LaneController` the simulator loop uses.

    ros2 run lane_seg lane_controller --ros-args --params-file config/controller.yaml \\
        -r ~/lane_center:=/seg_node/lane_center -r ~/cmd_vel:=/cmd_vel
    ros2 launch lane_seg lane_keeping.launch.py   # with the segmentation node, connected

- Topics are private, `~/lane_center` in and `~/cmd_vel` out, so the node runs under any
  namespace and is connected by remapping (the launch file does it).
- Its parameters are ControllerConfig's settings, declared with their descriptions and ranges;
  `config/controller.yaml` holds them as a ROS 2 parameter file. They can change at run time:
  the validation callback checks the changed settings as a whole (choices too), the post-set
  callback applies them.
- Each command is stamped with its path's stamp (the camera frame's), so a consumer can pair it
  with the frame; the yaw rate is speed * tan(steer) / wheelbase (kinematic bicycle).
- QoS: reliable, depth 10, overridable through rclpy's QoS overrides (lane_seg.ros.params).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.qos import QoSProfile, ReliabilityPolicy

from lane_seg.errors import LaneSegError
from lane_seg.lanes.control import ControllerConfig, LaneController
from lane_seg.ros.messages import path_to_estimate, stamp_ns
from lane_seg.ros.params import CheckedNode, declare_settings, qos_errors, qos_options

NODE_NAME = "lane_controller"


def _qos() -> QoSProfile:
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class LaneControllerNode(CheckedNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = declare_settings(self, ControllerConfig)
        self.cfg = ControllerConfig.from_dict(values, source=f"{NODE_NAME} parameters")
        self.controller = LaneController(self.cfg)
        self.speed = self.cfg.cruise_speed_mps
        self._last_stamp: int | None = None
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        with qos_errors():
            out_qos = qos_options(self, "~/cmd_vel", "publisher")
            self.pub = self.create_publisher(
                TwistStamped, "~/cmd_vel", _qos(), qos_overriding_options=out_qos
            )
            in_qos = qos_options(self, "~/lane_center", "subscription")
            self.sub = self.create_subscription(
                Path, "~/lane_center", self._on_path, _qos(), qos_overriding_options=in_qos
            )
        self.get_logger().info(
            f"{self.cfg.lateral} at {self.cfg.cruise_speed_mps:g} m/s; "
            f"{self.sub.topic_name} -> {self.pub.topic_name}"
        )
        self.warn_unused_parameters()

    def _settings(self, params: list) -> ControllerConfig | None:
        """The configuration with these parameters changed; None if none is a setting."""
        changed = {p.name: p.value for p in params if hasattr(self.cfg, p.name)}
        if not changed:
            return None
        values = {**dataclasses.asdict(self.cfg), **changed}
        return ControllerConfig.from_dict(values, source=f"{NODE_NAME} parameters")

    def _check_parameters(self, params: list) -> SetParametersResult:
        """Validation only: the change is applied in `_apply_parameters`."""
        try:
            self._settings(params)
        except LaneSegError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply_parameters(self, params: list) -> None:
        cfg = self._settings(params)
        if cfg is not None:
            self.cfg = self.controller.cfg = cfg

    def _on_path(self, msg: Path) -> None:
        now = stamp_ns(msg.header)
        dt = (now - self._last_stamp) * 1e-9 if self._last_stamp is not None else 0.1
        self._last_stamp = now
        steer, v = self.controller.update(path_to_estimate(msg), self.speed, max(dt, 1e-3))
        self.speed = v
        out = TwistStamped()
        out.header = msg.header
        out.twist.linear.x = float(v)
        out.twist.angular.z = float(v * math.tan(steer) / self.cfg.wheelbase_m)
        self.pub.publish(out)
