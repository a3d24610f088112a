"""The ROS 2 lane segmentation node (Contract 3): camera frames in, lane masks out.

    ros2 run lane_seg seg_node --ros-args -p model:=model.onnx -r ~/image:=/camera/image_raw
    lane-seg node --model model.onnx --image-topic /camera/image_raw   # pip-only installs

Design:
- The subscription callback only converts the message (numpy, no cv_bridge) and puts the frame
  in a one-slot buffer; a worker thread runs the model. The newest frame always wins: a frame
  still waiting when a newer one arrives is dropped and counted, so a burst never builds a
  queue and latency stays bounded by one inference.
- A bad message (unknown encoding, wrong step, truncated data, zero or huge size, undecodable
  JPEG/PNG) is counted, logged at a limited rate and skipped; the node never dies on input.
- The mask is mono8 at the input resolution with the input header copied verbatim (stamp and
  frame_id), so it pairs exactly with the camera's camera_info and depth (RTAB-Map,
  depth_image_proc).
- The overlay is computed only while someone subscribes to it.
- `~/lane_center` (nav_msgs/Path) is published when a lane-geometry function is plugged in
  (`SegNode(lane_center_fn=...)`), see `LaneCenterFn`.
"""

from __future__ import annotations

import array
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from lane_seg.errors import LaneSegError
from lane_seg.ros.image_codec import (
    MAX_PIXELS,
    BadImage,
    bgr8_fields,
    message_to_rgb,
    mono8_fields,
    quiet_opencv,
)
from lane_seg.ros.stats import NodeStats
from lane_seg.runtime.engines import ENGINE_NAMES, load_engine
from lane_seg.runtime.segmenter import Segmenter, overlay_bgr

NODE_NAME = "seg_node"
TRANSPORTS = ("raw", "compressed")
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}

# mask (HxW uint8, 0/255) -> lane centre points (x forward, y left, metres) in the vehicle
# frame, or None when no lane is found. The closed-loop lane geometry plugs in here.
LaneCenterFn = Callable[[np.ndarray], "Sequence[tuple[float, float]] | None"]


@dataclass
class Frame:
    header: Any
    rgb: np.ndarray
    received: float  # time.monotonic() when the callback got it


def _desc(
    text: str,
    *,
    read_only: bool = False,
    float_range: tuple[float, float] | None = None,
    int_range: tuple[int, int] | None = None,
    choices: Sequence[str] = (),
) -> ParameterDescriptor:
    d = ParameterDescriptor(description=text, read_only=read_only)
    if float_range:
        d.floating_point_range = [
            FloatingPointRange(from_value=float_range[0], to_value=float_range[1], step=0.0)
        ]
    if int_range:
        d.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    if choices:
        d.additional_constraints = "one of: " + ", ".join(choices)
    return d


def _as_uint8_array(a: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(a).tobytes())
    return out


def _image_msg(header, fields: dict) -> Image:
    msg = Image()
    msg.header = header
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = fields["encoding"], 0, fields["step"]
    msg.data = _as_uint8_array(fields["data"])
    return msg


class SegNode(Node):
    def __init__(
        self, lane_center_fn: LaneCenterFn | None = None, node_name: str = NODE_NAME, **kwargs
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.stats = NodeStats()
        quiet_opencv()  # bad frames are counted and logged here, rate-limited
        self._declare_static_parameters()
        p = self._static_params()
        engine = load_engine(p["model"], p["engine"], p["threads"])  # LaneSegError: fail now
        self.segmenter = Segmenter(engine)
        self.declare_parameter(
            "threshold",
            engine.info.threshold,
            _desc(
                "lane where sigmoid(logit) > threshold; changeable at run time",
                float_range=(0.0, 1.0),
            ),
        )
        self.declare_parameter(
            "overlay_alpha",
            0.55,
            _desc("overlay blend weight of the lane colour", float_range=(0.0, 1.0)),
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._threshold = float(self.get_parameter("threshold").value)
        self._alpha = float(self.get_parameter("overlay_alpha").value)
        self._max_pixels = p["max_pixels"]
        self._log_period = p["bad_input_log_period"]
        self._vehicle_frame = p["vehicle_frame"]
        self._lane_center_fn = lane_center_fn

        self._cv = threading.Condition()
        self._slot: Frame | None = None
        self._stop = False
        self._create_topics(p)
        self._worker = threading.Thread(target=self._work, name="seg_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self._log_start(p["model"], engine)

    def _log_start(self, model: str, engine) -> None:
        timings = ", ".join(f"{k} {v:.1f} ms" for k, v in engine.auto_timings.items())
        self.get_logger().info(
            f"model {model} ({engine.info.arch}, {engine.info.precision}, input "
            f"{engine.info.preprocess.width}x{engine.info.preprocess.height}) on "
            f"{engine.describe()}"
            + (f" [auto: {timings}]" if timings else "")
            + f"; listening on {self.sub.topic_name}"
        )

    def _create_topics(self, p: dict[str, Any]) -> None:
        in_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p["qos.input_depth"],
            reliability=RELIABILITY[p["qos.input_reliability"]],
        )
        out_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p["qos.output_depth"],
            reliability=RELIABILITY[p["qos.output_reliability"]],
        )
        self.mask_pub = self.create_publisher(Image, "~/mask", out_qos)
        self.overlay_pub = self.create_publisher(Image, "~/overlay", out_qos)
        self.lane_center_pub = (
            self.create_publisher(Path, "~/lane_center", out_qos) if self._lane_center_fn else None
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if p["input_transport"] == "compressed":
            self.sub = self.create_subscription(
                CompressedImage, "~/image/compressed", self._on_image, in_qos
            )
        else:
            self.sub = self.create_subscription(Image, "~/image", self._on_image, in_qos)

    # ---------------------------------------------------------------- parameters

    def _declare_static_parameters(self) -> None:
        ro = {"read_only": True}
        self.declare_parameter(
            "model", "", _desc("the .onnx (or .pt) model; empty = the shipped int8 model", **ro)
        )
        self.declare_parameter(
            "engine",
            "auto",
            _desc("inference engine; auto times them all", choices=ENGINE_NAMES, **ro),
        )
        self.declare_parameter(
            "threads", 0, _desc("inference threads, 0 = runtime default", int_range=(0, 256), **ro)
        )
        self.declare_parameter(
            "input_transport",
            "raw",
            _desc("raw: ~/image, compressed: ~/image/compressed", choices=TRANSPORTS, **ro),
        )
        for side, rel, depth in (("input", "best_effort", 5), ("output", "reliable", 1)):
            self.declare_parameter(
                f"qos.{side}_reliability",
                rel,
                _desc(f"{side} QoS reliability", choices=tuple(RELIABILITY), **ro),
            )
            self.declare_parameter(
                f"qos.{side}_depth",
                depth,
                _desc(f"{side} QoS keep-last depth", int_range=(1, 100000), **ro),
            )
        self.declare_parameter(
            "max_pixels",
            MAX_PIXELS,
            _desc("frames larger than this are refused as bad input", int_range=(1, 1 << 30), **ro),
        )
        self.declare_parameter(
            "diagnostics_period",
            1.0,
            _desc("seconds between /diagnostics messages", float_range=(0.05, 60.0), **ro),
        )
        self.declare_parameter(
            "bad_input_log_period",
            5.0,
            _desc(
                "at most one bad-input log line per this many seconds",
                float_range=(0.0, 3600.0),
                **ro,
            ),
        )
        self.declare_parameter(
            "vehicle_frame",
            "base_link",
            _desc("frame_id of ~/lane_center (the vehicle frame)", **ro),
        )

    def _static_params(self) -> dict[str, Any]:
        names = [
            "model", "engine", "threads", "input_transport", "qos.input_reliability",
            "qos.input_depth", "qos.output_reliability", "qos.output_depth", "max_pixels",
            "diagnostics_period", "bad_input_log_period", "vehicle_frame",
        ]  # fmt: skip
        p = {n: self.get_parameter(n).value for n in names}
        from lane_seg.runtime.shipped_model import model_or_default

        p["model"] = model_or_default(p["model"])
        checks = {
            "engine": ENGINE_NAMES,
            "input_transport": TRANSPORTS,
            "qos.input_reliability": tuple(RELIABILITY),
            "qos.output_reliability": tuple(RELIABILITY),
        }
        for name, choices in checks.items():
            if p[name] not in choices:
                raise LaneSegError(f"parameter {name}={p[name]!r}; use one of {', '.join(choices)}")
        return p

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "threshold":
                self._threshold = float(param.value)
            elif param.name == "overlay_alpha":
                self._alpha = float(param.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- input

    def _on_image(self, msg) -> None:
        received = time.monotonic()
        self.stats.received += 1
        try:
            rgb = message_to_rgb(msg, self._max_pixels)
        except BadImage as exc:
            self._count_bad(str(exc))
            return
        except Exception as exc:  # a message no check foresaw still must not stop the node
            self._count_bad(f"{type(exc).__name__}: {exc}")
            return
        with self._cv:
            if self._slot is not None:
                self.stats.dropped += 1
            self._slot = Frame(msg.header, rgb, received)
            self._cv.notify()

    def _count_bad(self, reason: str) -> None:
        self.stats.bad_inputs += 1
        self.stats.last_bad_reason = reason
        self.get_logger().warning(
            f"bad input skipped ({self.stats.bad_inputs} so far): {reason}",
            throttle_duration_sec=self._log_period,
        )

    # ---------------------------------------------------------------- worker

    def _work(self) -> None:
        while True:
            with self._cv:
                while self._slot is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                frame, self._slot = self._slot, None
            try:
                self._process(frame)
            except Exception as exc:  # keep serving; the diagnostics show the error count
                self.stats.errors += 1
                self.get_logger().error(
                    f"frame failed ({self.stats.errors} so far): {type(exc).__name__}: {exc}",
                    throttle_duration_sec=self._log_period,
                )

    def _process(self, frame: Frame) -> None:
        mask = self.segmenter.segment(frame.rgb, self._threshold)
        self.mask_pub.publish(_image_msg(frame.header, mono8_fields(mask)))
        if self.overlay_pub.get_subscription_count() > 0:
            over = overlay_bgr(frame.rgb, mask, self._alpha)
            self.overlay_pub.publish(_image_msg(frame.header, bgr8_fields(over)))
            self.stats.overlays += 1
        if self.lane_center_pub is not None:
            self._publish_lane_center(frame.header, mask)
        latency = (time.monotonic() - frame.received) * 1e3
        self.stats.frame_done(latency, self.segmenter.last.inference_ms)

    def _publish_lane_center(self, header, mask: np.ndarray) -> None:
        points = self._lane_center_fn(mask)
        path = Path()
        path.header.stamp = header.stamp
        path.header.frame_id = self._vehicle_frame
        pts = list(points or [])
        for i, (x, y) in enumerate(pts):
            pose = PoseStamped()
            pose.header = path.header
            pose.pose.position.x, pose.pose.position.y = float(x), float(y)
            nx, ny = pts[min(i + 1, len(pts) - 1)]
            px, py = pts[max(i - 1, 0)]
            yaw = math.atan2(ny - py, nx - px) if len(pts) > 1 else 0.0
            pose.pose.orientation.z, pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
            path.poses.append(pose)
        self.lane_center_pub.publish(path)

    # ---------------------------------------------------------------- diagnostics

    def diagnostics(self) -> DiagnosticStatus:
        s = self.stats.snapshot()
        eng = self.segmenter.engine
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: lane segmentation"
        status.hardware_id = eng.describe()
        if self.stats.errors:
            status.level, status.message = DiagnosticStatus.WARN, "inference errors"
        elif s["processed"] == 0:
            status.level, status.message = DiagnosticStatus.OK, "waiting for frames"
        else:
            status.level, status.message = DiagnosticStatus.OK, f"{s['fps']:.1f} fps"
        values = {
            **{k: (f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in s.items()},
            "engine": eng.name,
            "device": eng.device,
            "precision": eng.info.precision,
            "threshold": f"{self._threshold:g}",
            "last_bad_input": self.stats.last_bad_reason,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [self.diagnostics()]
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._worker.join(timeout=5.0)
        super().destroy_node()


def run_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Entry-point body shared by the package's nodes: init, spin until Ctrl-C or shutdown, and
    turn start-up problems (bad --ros-args, LaneSegError) into one line and exit code 2."""
    try:
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


def main(args: list[str] | None = None) -> int:
    """`seg_node` entry point (`ros2 run lane_seg seg_node --ros-args -p model:=...`)."""
    from lane_seg.ros.lane_center import LaneSegNode  # SegNode + ~/lane_center (lane geometry)

    return run_node(LaneSegNode, NODE_NAME, args)
